"""Every Spillway topic, declared as data in one place.

Names are versioned (``telemetry.gpu.v1``): a breaking contract change gets a new topic,
never a silent change of an existing one. ``schemas.registry`` says which contract each
topic carries; a test checks that both lists agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    """What the message key is (drives partitioning)."""
    purpose: str
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    extra: dict[str, str] = field(default_factory=dict)

    def configs(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        cfg.update(self.extra)
        return cfg


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("telemetry.meter.v1", 3, "source id", "meter scrapes (power, energy registers)"),
    TopicSpec("telemetry.gpu.v1", 6, "node or rack id", "GPU readings framed per node or rack"),
    TopicSpec("telemetry.asic.v1", 6, "rack or scrape id", "ASIC miner scrapes"),
    TopicSpec(
        "grid.prices.v1",
        1,
        "settlement point",
        "real-time and day-ahead prices",
        retention_ms=400 * DAY_MS,
    ),
    TopicSpec(
        "grid.dispatch.v1",
        1,
        "dispatch event id",
        "demand-response, ancillary, EEA",
        retention_ms=400 * DAY_MS,
    ),
    TopicSpec("grid.frequency.v1", 1, "source id", "system frequency samples"),
    TopicSpec(
        "grid.hashprice.v1",
        1,
        "network",
        "bitcoin network hashprice (USD/PH/day), sent at publication",
        retention_ms=400 * DAY_MS,
    ),
    TopicSpec(
        "grid.carbon.v1", 1, "region", "hourly grid carbon intensity", retention_ms=400 * DAY_MS
    ),
    TopicSpec("grid.fuelmix.v1", 1, "region", "generation by fuel", retention_ms=400 * DAY_MS),
    TopicSpec(
        "site.config.v1",
        1,
        "site id",
        "site configuration (latest per site)",
        retention_ms=-1,
        cleanup_policy="compact",
    ),
    TopicSpec(
        "site.power.partial.v1",
        3,
        "site id",
        "per-partition partial sums (internal)",
        retention_ms=DAY_MS,
    ),
    TopicSpec(
        "site.power.v1", 3, "site id", "1-second site power by use", retention_ms=30 * DAY_MS
    ),
    TopicSpec(
        "site.power.restated.v1",
        3,
        "site id",
        "closed seconds of site power restated by late readings (schemas.restatement)",
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        "surplus.events.v1", 1, "site id", "surplus open/update/close", retention_ms=400 * DAY_MS
    ),
    TopicSpec(
        "curtailment.events.v1", 1, "site id", "curtailment events", retention_ms=400 * DAY_MS
    ),
    TopicSpec(
        "miners.commands.v1",
        3,
        "site id",
        "miner setpoints for the fleet controller",
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec("alerts.v1", 1, "site id", "alerts, firing and resolved", retention_ms=90 * DAY_MS),
    TopicSpec(
        "actuation.outcomes.v1",
        3,
        "device id",
        "command delivery: sent, acknowledged, complied, failed, escalated",
        retention_ms=400 * DAY_MS,
    ),
    TopicSpec(
        "actuation.in_force.v1",
        3,
        "device id",
        "latest command per device, re-asserted after an actuator restart",
        retention_ms=-1,
        cleanup_policy="compact",
    ),
    TopicSpec(
        "actuation.audit.v1", 1, "site id", "every actuation action", retention_ms=400 * DAY_MS
    ),
    TopicSpec(
        "actuation.pause.v1",
        1,
        "site id",
        "latest operator pause or resume per site, restored at an actuator start",
        retention_ms=-1,
        cleanup_policy="compact",
    ),
    TopicSpec(
        "deadletter.v1",
        1,
        "source topic",
        "rejected messages with reason",
        retention_ms=90 * DAY_MS,
        extra={"max.message.bytes": "10485760"},
    ),
)

TELEMETRY_TOPICS = ("telemetry.meter.v1", "telemetry.gpu.v1", "telemetry.asic.v1")
GRID_TOPICS = (
    "grid.prices.v1",
    "grid.dispatch.v1",
    "grid.frequency.v1",
    "grid.hashprice.v1",
    "grid.carbon.v1",
    "grid.fuelmix.v1",
)
DEADLETTER = "deadletter.v1"


def spec(base: str) -> TopicSpec:
    for t in TOPICS:
        if t.name == base:
            return t
    raise KeyError(f"unknown topic {base!r}; declared: {', '.join(t.name for t in TOPICS)}")


def full_name(base: str, namespace: str = "") -> str:
    """Topic name on the broker: ``<namespace>.<base>`` when a namespace is set."""
    spec(base)
    return f"{namespace}.{base}" if namespace else base


def base_name(full: str, namespace: str = "") -> str:
    """Inverse of ``full_name``."""
    prefix = f"{namespace}." if namespace else ""
    if prefix and not full.startswith(prefix):
        raise KeyError(f"topic {full!r} is not in namespace {namespace!r}")
    return full[len(prefix) :]
