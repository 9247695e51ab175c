"""Create or reconcile the declared topics on a cluster. Idempotent.

The plan (what to create, which partition counts to raise, which configs to change) is
computed by a pure function from the declared specs and what the cluster reports, then
applied with kafka-python's admin client. Partition counts only grow in Kafka: a declared
count below the actual one is refused with a message, never "fixed" by deleting data.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.admin import open_admin
from infra.topics import TOPICS, TopicSpec, full_name
from streams.errors import TerminalError
from streams.settings import Settings


class ProvisionError(TerminalError, RuntimeError):
    """The cluster's topics cannot be brought to the declared state; says which and why."""


@dataclass(frozen=True)
class Existing:
    partitions: int
    configs: Mapping[str, str]


@dataclass
class Plan:
    create: list[tuple[str, TopicSpec]] = field(default_factory=list)
    grow: list[tuple[str, int, int]] = field(default_factory=list)
    """(topic, from, to)"""
    reconfigure: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.grow or self.reconfigure)

    def describe(self) -> list[str]:
        lines = [f"create {n} ({s.partitions} partitions)" for n, s in self.create]
        lines += [f"grow {n} from {a} to {b} partitions" for n, a, b in self.grow]
        lines += [f"set {n} {cfg}" for n, cfg in self.reconfigure]
        return lines + [f"REFUSED: {r}" for r in self.refused]


def plan(specs: Iterable[TopicSpec], existing: Mapping[str, Existing], namespace: str = "") -> Plan:
    """What must change so that the cluster matches ``specs``. Pure."""
    result = Plan()
    for s in specs:
        name = full_name(s.name, namespace)
        have = existing.get(name)
        if have is None:
            result.create.append((name, s))
            continue
        if s.partitions > have.partitions:
            result.grow.append((name, have.partitions, s.partitions))
        elif s.partitions < have.partitions:
            result.refused.append(
                f"{name} has {have.partitions} partitions, declared {s.partitions}: Kafka cannot "
                "shrink a topic; raise the declaration or create a new versioned topic"
            )
        changed = {k: v for k, v in s.configs().items() if have.configs.get(k) != v}
        if changed:
            result.reconfigure.append((name, changed))
    return result


def _admin(settings: Settings) -> Any:
    return open_admin(settings, "spillway-provision")


def describe_existing(admin: Any, names: Iterable[str]) -> dict[str, Existing]:
    from kafka.admin import ConfigResource, ConfigResourceType

    wanted = set(names)
    present = wanted & set(admin.list_topics())
    if not present:
        return {}
    partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(sorted(present))}
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in sorted(present)]
    described = admin.describe_configs(resources).get("topic", {})
    configs = {
        name: {key: entry["value"] for key, entry in entries.items()}
        for name, entries in described.items()
    }
    return {n: Existing(partitions[n], configs.get(n, {})) for n in present}


def _wait_until_applied(
    admin: Any, specs: list[TopicSpec], namespace: str, timeout_s: float = 30.0
) -> None:
    """Metadata propagates asynchronously; return once the cluster reports the declared state."""
    names = [full_name(s.name, namespace) for s in specs]
    deadline = time.monotonic() + timeout_s
    while True:
        left = plan(specs, describe_existing(admin, names), namespace)
        if left.empty:
            return
        if time.monotonic() > deadline:
            raise ProvisionError(
                f"cluster did not apply within {timeout_s:.0f} s: {left.describe()}"
            )
        time.sleep(0.2)


def provision(settings: Settings, specs: Iterable[TopicSpec] = TOPICS) -> Plan:
    """Bring the cluster to the declared topics. Raises ProvisionError on refusals."""
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

    specs = list(specs)
    admin = _admin(settings)
    try:
        names = [full_name(s.name, settings.topic_namespace) for s in specs]
        todo = plan(specs, describe_existing(admin, names), settings.topic_namespace)
        if todo.refused:
            raise ProvisionError("; ".join(todo.refused))
        rf = settings.topic_replication_factor
        if todo.create:
            admin.create_topics(
                [NewTopic(n, s.partitions, rf, topic_configs=s.configs()) for n, s in todo.create]
            )
        if todo.grow:
            admin.create_partitions({n: NewPartitions(total_count=b) for n, _, b in todo.grow})
        for name, cfg in todo.reconfigure:
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=cfg)])
        if not todo.empty:
            _wait_until_applied(admin, specs, settings.topic_namespace)
        return todo
    finally:
        admin.close()


def delete_namespace(settings: Settings) -> list[str]:
    """Delete every topic of ``settings.topic_namespace`` (tests and benchmarks clean up).

    Refuses the empty namespace: production topics are never deleted by Spillway.
    """
    ns = settings.topic_namespace
    if not ns:
        raise ProvisionError("refusing to delete topics without a namespace")
    admin = _admin(settings)
    try:
        doomed = [t for t in admin.list_topics() if t.startswith((f"{ns}.", f"{ns}-"))]
        if doomed:
            admin.delete_topics(doomed)
        return doomed
    finally:
        admin.close()
