"""Read a range of offsets of one partition straight from Kafka (no consumer group).

Used by the agents to fill a gap that faust left in a partition's offsets (see
``streams.agents.continuity``). Blocking: call it from a thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import TopicPartition

from streams.io.kafka import make_consumer
from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class ReadBack:
    messages: list[tuple[int, bytes | None, bytes | None]]
    """(offset, key, value) in offset order."""
    missing: int
    """Offsets of the range the broker no longer holds (retention) or never had."""


def read_range(
    settings: Settings, topic: str, partition: int, start: int, end: int, timeout_s: float = 30.0
) -> ReadBack:
    """Messages with ``start <= offset < end`` of ``topic``/``partition``."""
    # A group id librdkafka insists on; assign() never joins it and nothing is committed.
    consumer = make_consumer(settings, f"spillway-readback-{uuid.uuid4().hex[:8]}")
    try:
        tp = TopicPartition(topic, partition)
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
        first = max(start, low)
        last = min(end, high)
        out: list[tuple[int, bytes | None, bytes | None]] = []
        if first < last:
            consumer.assign([TopicPartition(topic, partition, first)])
            while True:
                msg = consumer.poll(timeout_s)
                if msg is None:
                    where = f"{topic}:{partition} [{first}, {last})"
                    raise TimeoutError(f"read back {where}: nothing for {timeout_s:.0f} s")
                if msg.error() is not None:
                    raise RuntimeError(f"read back {topic}:{partition}: {msg.error()}")
                offset = msg.offset() or 0  # never None for a fetched message
                if offset >= last:
                    break
                out.append((offset, msg.key(), msg.value()))
                if offset == last - 1:
                    break
        return ReadBack(messages=out, missing=(end - start) - len(out))
    finally:
        consumer.close()


def start_offsets(
    settings: Settings,
    group: str,
    partitions: Sequence[tuple[str, int]],
    timeout_s: float = 30.0,
) -> dict[tuple[str, int], int]:
    """Where ``group`` starts reading each (topic, partition) when it has no state for it:
    its committed offset, else the earliest offset the broker still holds (the agents'
    ``auto_offset_reset`` is earliest). The expected offset of a partition's first batch,
    so that offsets faust skips before it are a gap too.

    One consumer and one request for all of them: a worker's first batch holds up to every
    telemetry partition, and one lookup after another (a consumer each) held the last of
    them back for seconds, long enough for stage 2 to close seconds without them."""
    if not partitions:
        return {}
    consumer = make_consumer(settings, group)  # committed() reads; it never joins the group
    try:
        tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        out: dict[tuple[str, int], int] = {}
        for tp in consumer.committed(tps, timeout=timeout_s):
            if tp.offset >= 0:
                out[(tp.topic, tp.partition)] = int(tp.offset)
            else:
                low, _ = consumer.get_watermark_offsets(tp, timeout=timeout_s)
                out[(tp.topic, tp.partition)] = int(low)
        return out
    finally:
        consumer.close()
