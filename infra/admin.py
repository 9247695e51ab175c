"""The one Kafka admin client: kafka-python's ``KafkaAdminClient``, built from ``Settings``.

This is the only module that turns the security settings into an admin client (SASL
mechanism, user, password, CA file), so every admin call speaks one dialect. It offers the
few operations the code needs; callers with rarer needs (ACLs, topic configs, group
listings) use the client ``open_admin`` returns. Producers and consumers stay on
confluent-kafka (``streams.io.kafka``).

kafka-python bootstraps inside the client's constructor: a broker that does not answer
raises there, after ``bootstrap_timeout_s``, not on the first call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from streams.errors import TerminalError, TransientError
from streams.settings import Settings

Partition = tuple[str, int]
"""(topic, partition)."""


class AdminError(TransientError, RuntimeError):
    """The cluster did not do what was asked in time (topics not visible yet, a group's
    coordinator loading); the same call may succeed later."""


class AdminRefused(TerminalError, RuntimeError):
    """The cluster refused an admin request (an ACL missing, a topic config it rejects);
    asking again gives the same answer."""


def admin_config(
    settings: Settings,
    client_id: str,
    *,
    request_timeout_s: float | None = None,
    bootstrap_timeout_s: float | None = None,
) -> dict[str, Any]:
    """KafkaAdminClient keyword arguments: connection and security from ``settings``
    (kafka-python's spelling), timeouts only where given (else kafka-python's 30 s)."""
    cfg: dict[str, Any] = {"client_id": client_id, **settings.kafka_python_config()}
    if request_timeout_s is not None:
        cfg["request_timeout_ms"] = int(request_timeout_s * 1000)
    if bootstrap_timeout_s is not None:
        cfg["bootstrap_timeout_ms"] = int(bootstrap_timeout_s * 1000)
    return cfg


@lru_cache(maxsize=1)
def _client_class() -> Any:
    """KafkaAdminClient that stops its I/O thread when the bootstrap in its constructor
    fails: kafka-python 3.0.12 leaves that daemon thread running, and a probe called every
    half second would pile them up. Built on first use: importing kafka.admin takes
    about 0.1 s, which every ``spillway`` command would otherwise pay."""
    from kafka.admin import KafkaAdminClient

    class _Admin(KafkaAdminClient):  # type: ignore[misc]  # kafka-python ships no type hints
        def __init__(self, **configs: Any) -> None:
            try:
                super().__init__(**configs)
            except BaseException:
                if hasattr(self, "_net"):
                    self._closed = False
                    self.close()
                raise

    return _Admin


def open_admin(
    settings: Settings,
    client_id: str,
    *,
    request_timeout_s: float | None = None,
    bootstrap_timeout_s: float | None = None,
) -> Any:
    """A connected KafkaAdminClient (the caller closes it). Raises kafka-python's
    ``KafkaTimeoutError`` when no broker answers within ``bootstrap_timeout_s``."""
    return _client_class()(
        **admin_config(
            settings,
            client_id,
            request_timeout_s=request_timeout_s,
            bootstrap_timeout_s=bootstrap_timeout_s,
        )
    )


@contextmanager
def admin_session(
    settings: Settings,
    client_id: str,
    *,
    request_timeout_s: float | None = None,
    bootstrap_timeout_s: float | None = None,
) -> Iterator[Any]:
    """``open_admin`` closed on exit."""
    admin = open_admin(
        settings,
        client_id,
        request_timeout_s=request_timeout_s,
        bootstrap_timeout_s=bootstrap_timeout_s,
    )
    try:
        yield admin
    finally:
        admin.close()


# --- topics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WantedTopic:
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


def ensure_topics(
    admin: Any,
    wanted: Mapping[str, WantedTopic],
    replication_factor: int,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics of ``wanted`` that do not exist, then wait until the metadata shows
    every one of them with its partition count and a leader for each partition; returns
    the names created. A topic another client created meanwhile counts as created."""
    present = set(admin.list_topics())
    new = {
        name: {
            "num_partitions": w.partitions,
            "replication_factor": replication_factor,
            "configs": dict(w.configs),
        }
        for name, w in wanted.items()
        if name not in present
    }
    if new:
        result = admin.create_topics(new, timeout_ms=int(timeout_s * 1000), raise_errors=False)
        for topic in result["topics"]:
            if topic["error_code"] not in (0, _TOPIC_ALREADY_EXISTS):
                raise AdminRefused(
                    f"cannot create topic {topic['name']}: error {topic['error_code']} "
                    f"{topic.get('error_message') or ''}".rstrip()
                )
    _wait_visible(admin, wanted, timeout_s)
    return sorted(new)


_TOPIC_ALREADY_EXISTS = 36
"""Kafka protocol error code TOPIC_ALREADY_EXISTS."""


def _wait_visible(admin: Any, wanted: Mapping[str, WantedTopic], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        described = {t["name"]: t for t in admin.describe_topics(sorted(wanted))}
        missing = [n for n, w in wanted.items() if not _ready(described.get(n), w.partitions)]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AdminError(
                f"topics not visible with their partitions after {timeout_s:.0f} s: "
                + ", ".join(missing)
            )
        time.sleep(0.2)


def _ready(topic: Mapping[str, Any] | None, partitions: int) -> bool:
    if topic is None or topic.get("error_code"):
        return False
    parts = topic.get("partitions") or []
    return len(parts) == partitions and all(
        not p.get("error_code") and p.get("leader_id", -1) >= 0 for p in parts
    )


# --- consumer groups --------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    partitions: frozenset[Partition]


@dataclass(frozen=True)
class Group:
    group_id: str
    state: str
    """Kafka's group state: Stable, PreparingRebalance, Empty, Dead (no such group) ..."""
    members: tuple[Member, ...]


def describe_group(admin: Any, group: str) -> Group:
    """``group``'s state and members with their assigned partitions. A group that does not
    exist yet has no members (state Dead)."""
    desc = admin.describe_groups([group])[group]
    error = desc.get("error")
    if error and "GroupIdNotFound" not in error:
        kind = AdminRefused if "Authorization" in error else AdminError
        raise kind(f"cannot describe consumer group {group}: {error}")
    members = tuple(
        Member(m["member_id"], m["client_id"], assigned_partitions(m["member_assignment"]))
        for m in desc["members"]
    )
    return Group(group, desc["group_state"], members)


def assigned_partitions(assignment: Any) -> frozenset[Partition]:
    """The partitions of a member's assignment. kafka-python 3.0.12 decodes a consumer
    group's assignment inline (``{"assigned_partitions": [{"topic", "partitions"}]}``) and
    leaves the raw bytes when that fails; the bytes are decoded here with kafka-python's
    own ``ConsumerProtocolAssignment``. No assignment (a member still joining) is empty."""
    if not assignment:
        return frozenset()
    if isinstance(assignment, bytes | bytearray):
        from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment

        assignment = ConsumerProtocolAssignment.decode(bytes(assignment)).to_dict()
    return frozenset(
        (entry["topic"], int(p))
        for entry in assignment["assigned_partitions"]
        for p in entry["partitions"]
    )


def wait_for_group(
    settings: Settings,
    group: str,
    ready: Callable[[Group], bool],
    timeout_s: float,
    poll_s: float = 0.5,
    client_id: str = "spillway-wait",
) -> Group | None:
    """Describe ``group`` every ``poll_s`` until ``ready(group)``; None after ``timeout_s``.
    A group that does not exist yet, a broker that does not answer, a coordinator that is
    loading: all mean "not ready yet", as they did for every caller."""
    deadline = time.monotonic() + timeout_s
    admin: Any = None
    try:
        while time.monotonic() < deadline:
            try:
                if admin is None:
                    left = max(deadline - time.monotonic(), 0.5)
                    admin = open_admin(
                        settings, client_id, request_timeout_s=10.0, bootstrap_timeout_s=left
                    )
                found = describe_group(admin, group)
                if ready(found):
                    return found
            except Exception:  # noqa: BLE001 - not ready yet, whatever the reason; see above
                pass
            time.sleep(poll_s)
        return None
    finally:
        if admin is not None:
            admin.close()


# --- offsets ----------------------------------------------------------------------------------


def committed_offsets(admin: Any, group: str) -> dict[Partition, int]:
    """The offsets ``group`` has committed, by partition (empty: none yet)."""
    offsets = admin.list_group_offsets({group: None}).get(group, {})
    return {(tp.topic, tp.partition): int(o.offset) for tp, o in offsets.items()}


def end_offsets(admin: Any, partitions: Iterable[Partition]) -> dict[Partition, int]:
    """The log end offset (the next offset to be written) of each partition."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    specs = {TopicPartition(t, p): OffsetSpec.LATEST for t, p in partitions}
    if not specs:
        return {}
    got = admin.list_partition_offsets(specs)
    return {(tp.topic, tp.partition): int(o.offset) for tp, o in got.items()}


# --- probe ------------------------------------------------------------------------------------


def answers(settings: Settings | None, bootstrap: str, timeout_s: float) -> bool:
    """True when ``bootstrap`` answers a metadata request with at least one broker, as a
    client with ``settings``' security (None: plaintext, no credentials) within about
    ``timeout_s``. Any failure (refused, TLS or SASL handshake, timeout) is False."""
    ms = int(timeout_s * 1000)
    if settings is None:
        cfg: dict[str, Any] = {"client_id": "spillway-probe", "security_protocol": "PLAINTEXT"}
    else:
        cfg = admin_config(settings, "spillway-probe")
    cfg |= {
        "bootstrap_servers": bootstrap.split(","),
        "request_timeout_ms": ms,
        "bootstrap_timeout_ms": ms,
    }
    try:
        admin = _client_class()(**cfg)
    except Exception:  # noqa: BLE001 - any client error means "not ready yet"
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except Exception:  # noqa: BLE001 - as above
        return False
    finally:
        admin.close()
