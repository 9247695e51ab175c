"""Send merged recordings to Kafka, paced, with progress, and wait for every ack."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from streams.io.kafka import TopicProducer
from streams.replay import scenario as scenario_mod
from streams.replay.pacing import wait_s
from streams.replay.records import Record, merge
from streams.settings import Settings


class Sink(Protocol):
    """What replay and the collectors send through: ``TopicProducer`` or a test double."""

    def send(
        self,
        base: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> None: ...

    def flush(self, timeout_s: float = 60.0) -> None: ...


Progress = Callable[[float, int], None]
"""Called as ``progress(event_ts_s, records_sent)`` now and then (about every 2,000 records)."""


@dataclass
class ReplayStats:
    per_topic: Counter[str] = field(default_factory=Counter)
    first_ts_s: float | None = None
    last_ts_s: float | None = None
    wall_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.per_topic.values())

    def describe(self) -> str:
        lines = [f"{topic:22s} {n:>10,d}" for topic, n in sorted(self.per_topic.items())]
        rate = self.total / self.wall_s if self.wall_s > 0 else 0.0
        lines.append(
            f"{'total':22s} {self.total:>10,d}  in {self.wall_s:.1f} s ({rate:,.0f}/s), "
            "all acknowledged"
        )
        return "\n".join(lines)


def send(
    settings: Settings,
    records: Iterable[Record],
    speed: float | None = None,
    progress: Progress | None = None,
    producer: Sink | None = None,
    label: str = "files",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ReplayStats:
    """Produce every record in order; return only after the broker acknowledged all of them.

    The Kafka message timestamp is left to the producer (now), not the historical event time:
    a CreateTime weeks old would put the segment past ``retention.ms`` at once and the broker
    could delete the replay. The event time is in the message body, the scenario in a header.
    """
    tp: Sink = producer or TopicProducer(settings)
    stats = ReplayStats()
    headers = [("spillway-replay", label.encode())]
    started = clock()
    first_wall = started
    for rec in records:
        if stats.first_ts_s is None:
            stats.first_ts_s = rec.ts_s
            first_wall = clock()
        delay = wait_s(stats.first_ts_s, first_wall, rec.ts_s, clock(), speed)
        if delay > 0:
            sleep(delay)
        tp.send(rec.topic, rec.value, rec.key, headers=headers)
        stats.per_topic[rec.topic] += 1
        stats.last_ts_s = rec.ts_s
        if progress is not None and stats.total % 2000 == 0:
            progress(rec.ts_s, stats.total)
    tp.flush(timeout_s=120.0)
    stats.wall_s = clock() - started
    if progress is not None and stats.last_ts_s is not None:
        progress(stats.last_ts_s, stats.total)
    return stats


def replay(
    settings: Settings,
    scenario: scenario_mod.Scenario,
    speed: float | None = None,
    progress: Progress | None = None,
    producer: Sink | None = None,
) -> ReplayStats:
    """Replay a scenario: every recording merged in event-time order into its topic."""
    records = merge(dict(scenario_mod.sources(scenario)))
    return send(settings, records, speed, progress, producer, label=scenario.name)
