"""Run the site model against Kafka: frames out to ``telemetry.*``, miner commands in from
``miners.commands.v1`` (the closed loop), paced in real time, N x, or as fast as possible.
"""

from __future__ import annotations

import resource
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException, TopicPartition

from infra.topics import full_name
from schemas.events import MinerCommand
from schemas.site import SiteConfig
from streams.io.kafka import TopicProducer, make_consumer
from streams.settings import Settings
from streams.sim.encode import Encoding, FrameEncoder
from streams.sim.faults import FaultConfig, TransportFaults
from streams.sim.model import SiteModel, Step
from streams.sim.spec import SimSpec

COMMANDS_TOPIC = "miners.commands.v1"


class SimStats(msgspec.Struct, kw_only=True):
    site_id: str
    sim_start_s: float
    sim_end_s: float
    steps: int = 0
    readings: int = 0
    messages: int = 0
    bytes: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    """User + system CPU of this process (all threads, librdkafka's included)."""
    commands: int = 0
    commands_rejected: int = 0
    miners_commanded: int = 0
    max_lag_s: float = 0.0
    """Paced runs: the most a step started behind its wall-clock slot."""
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    """Frames a collector outage held back and sent late (``FaultConfig.outage_s``)."""
    counter_resets: int = 0

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The figures the CLI prints, rounded."""
        w = self.wall_s or float("nan")
        return {
            "site_id": self.site_id,
            "sim_seconds": self.steps,
            "wall_s": round(self.wall_s, 3),
            "readings": self.readings,
            "messages": self.messages,
            "mb": round(self.bytes / 1e6, 2),
            "readings_per_s": round(self.readings / w),
            "messages_per_s": round(self.messages / w),
            "mb_per_s": round(self.bytes / 1e6 / w, 2),
            "cpu_s": round(self.cpu_s, 2),
            "cpu_per_wall": round(self.cpu_s / w, 2),
            "commands": self.commands,
            "commands_rejected": self.commands_rejected,
            "miners_commanded": self.miners_commanded,
            "max_lag_s": round(self.max_lag_s, 3),
            "dropped": self.dropped,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "counter_resets": self.counter_resets,
        }


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class CommandListener:
    """Reads miner commands from the end of the topic as it was when the simulator started.

    Partitions are assigned by hand at their current high watermarks (no group join), so a
    command sent once ``ready`` is set is never missed and old commands are never replayed.
    """

    def __init__(self, settings: Settings, site_id: str) -> None:
        self.site_id = site_id
        self.consumer: Consumer = make_consumer(
            settings, f"spillway-sim-{site_id}-{uuid.uuid4().hex[:8]}"
        )
        self._decoder = msgspec.json.Decoder(MinerCommand)
        topic = full_name(COMMANDS_TOPIC, settings.topic_namespace)
        meta = self.consumer.list_topics(topic, timeout=10.0)
        info = meta.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise RuntimeError(
                f"topic {topic} is missing on {settings.kafka_bootstrap_servers}: "
                "provision the namespace first (spillway topics ...)"
            )
        parts = [TopicPartition(topic, p, self._high(topic, p)) for p in sorted(info.partitions)]
        self.consumer.assign(parts)
        self.rejected = 0

    def _high(self, topic: str, partition: int, wait_s: float = 15.0) -> int:
        # Freshly provisioned topics answer "not leader" until their leaders are elected.
        deadline = time.monotonic() + wait_s
        while True:
            try:
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=5.0, cached=False
                )
                return int(high)
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"cannot read the end offset of {topic}[{partition}]: {exc}"
                    ) from exc
                time.sleep(0.2)

    def poll(self) -> list[MinerCommand]:
        out: list[MinerCommand] = []
        for msg in self.consumer.consume(num_messages=1000, timeout=0):
            if msg.error() is not None:
                continue
            try:
                cmd = self._decoder.decode(msg.value() or b"")
            except msgspec.DecodeError:
                self.rejected += 1
                continue
            if cmd.site_id == self.site_id:
                out.append(cmd)
        return out

    def close(self) -> None:
        self.consumer.close()


def run_simulator(
    settings: Settings,
    site: SiteConfig,
    *,
    sim: SimSpec | None = None,
    start_s: float | None = None,
    seconds: int = 60,
    speed: float | None = 1.0,
    faults: FaultConfig | None = None,
    stop_event: threading.Event | None = None,
    ready: threading.Event | None = None,
    on_step: Callable[[Step], None] | None = None,
    model: SiteModel | None = None,
    encoding: Encoding = "json",
) -> SimStats:
    """Simulate ``seconds`` of the site from UTC ``start_s`` (default: now) into Kafka.

    ``speed``: 1.0 real time, N for N x, ``None`` (or <= 0) as fast as possible. Miner
    commands on ``miners.commands.v1`` for this site act from the step after they arrive.
    ``ready`` is set once the command listener is positioned; ``stop_event`` ends the run
    early (frames already produced are flushed). Topics must exist in the namespace.
    ``encoding``: JSON or packed frames (``schemas.packed``).
    """
    model = model or SiteModel(site, sim, faults)
    t0 = float(int(time.time() if start_s is None else start_s))
    stats = SimStats(site_id=site.site_id, sim_start_s=t0, sim_end_s=t0)
    producer = TopicProducer(settings)
    listener = CommandListener(settings, site.site_id)
    encoder = FrameEncoder(model, encoding)
    transport = TransportFaults(model.faults, seed=model.sim.seed + 1)
    pace = speed if speed is not None and speed > 0 else None
    if ready is not None:
        ready.set()
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    try:
        for k in range(seconds):
            if stop_event is not None and stop_event.is_set():
                break
            if pace is not None:
                slot = wall0 + k / pace
                lag = time.perf_counter() - slot
                if lag < 0:
                    if stop_event is not None:
                        if stop_event.wait(-lag):
                            break
                    else:
                        time.sleep(-lag)
                else:
                    stats.max_lag_s = max(stats.max_lag_s, lag)
            t = t0 + k
            for cmd in listener.poll():
                res = model.command(cmd, t)
                stats.commands += 1
                stats.miners_commanded += res.applied + res.late
            step = model.step(t)
            if on_step is not None:
                on_step(step)
            for base, key, value in transport.apply(encoder.encode(step), t):
                producer.send(base, value, key)
                stats.messages += 1
                stats.bytes += len(value)
            producer.producer.poll(0)
            stats.steps += 1
            stats.readings += step.readings
            stats.sim_end_s = t + 1
        for base, key, value in transport.flush():
            producer.send(base, value, key)
            stats.messages += 1
            stats.bytes += len(value)
        producer.flush()
    finally:
        listener.close()
    stats.wall_s = time.perf_counter() - wall0
    stats.cpu_s = _cpu_s() - cpu0
    stats.commands_rejected = listener.rejected
    stats.dropped, stats.duplicated = transport.dropped, transport.duplicated
    stats.reordered = transport.reordered
    stats.delayed = transport.delayed
    stats.counter_resets = model.gpus.resets + model.meter_resets
    return stats
