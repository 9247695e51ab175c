"""Read a range of offsets of one partition straight from Kafka (no consumer group).

Used by the agents to fill a gap that faust left in a partition's offsets (see
``streams.faust_runtime.continuity``). Blocking: call it from a thread.

Both lookups retry transient broker errors (a partition's leader or the group's coordinator
moving, as right after topics are created or while a broker restarts): a stage-1 batch that
raised here would stop its agent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.errors import SpillwayError
from streams.io.kafka import make_consumer
from streams.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_DELAYS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
"""Waits between tries (about 8 s in all, longer than a leader election here)."""
TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)
"""Codes that librdkafka does not always flag as retriable but that pass on their own."""


def is_transient(err: KafkaError | BaseException) -> bool:
    """A Kafka error flagged retriable or listed in ``TRANSIENT`` (bare or inside a
    ``KafkaException``), or a Spillway error that says it is transient."""
    if isinstance(err, KafkaException):
        inner = err.args[0] if err.args else None
        return isinstance(inner, KafkaError) and is_transient(inner)
    if isinstance(err, KafkaError):
        return bool(err.retriable()) or err.code() in TRANSIENT
    return isinstance(err, SpillwayError) and err.transient


def with_retries(
    call: Callable[[], T],
    what: str,
    *,
    delays: Sequence[float] = RETRY_DELAYS_S,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, tried again after each of ``delays`` while it raises a transient
    ``KafkaException`` or ``SpillwayError``; any other error, or the last one, is raised."""
    for attempt, delay in enumerate([*delays, None], start=1):
        try:
            return call()
        except (KafkaException, SpillwayError) as exc:
            if delay is None or not is_transient(exc):
                raise
            log.warning("%s: %s (try %d); again in %.2f s", what, _reason(exc), attempt, delay)
            sleep(delay)
    raise AssertionError("unreachable: the last try returns or raises")


def _reason(exc: BaseException) -> str:
    inner = exc.args[0] if exc.args else None
    return inner.str() if isinstance(inner, KafkaError) else f"{type(exc).__name__}: {exc}"


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
    return with_retries(
        lambda: _read_range_once(settings, topic, partition, start, end, timeout_s),
        f"read back {topic}:{partition} [{start}, {end})",
    )


def _read_range_once(
    settings: Settings, topic: str, partition: int, start: int, end: int, timeout_s: float
) -> ReadBack:
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
                    raise KafkaException(msg.error())
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
    return with_retries(
        lambda: _start_offsets_once(settings, group, partitions, timeout_s),
        f"start offsets of {len(partitions)} partitions for {group}",
    )


def _start_offsets_once(
    settings: Settings, group: str, partitions: Sequence[tuple[str, int]], timeout_s: float
) -> dict[tuple[str, int], int]:
    consumer = make_consumer(settings, group)  # committed() reads; it never joins the group
    try:
        tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        out: dict[tuple[str, int], int] = {}
        for tp in consumer.committed(tps, timeout=timeout_s):
            if tp.error is not None:
                # Without it the offset reads as "none committed": the partition would
                # seem to start at its earliest offset and all of it be read back as a gap.
                raise KafkaException(tp.error)
            if tp.offset >= 0:
                out[(tp.topic, tp.partition)] = int(tp.offset)
            else:
                low, _ = consumer.get_watermark_offsets(tp, timeout=timeout_s)
                out[(tp.topic, tp.partition)] = int(low)
        return out
    finally:
        consumer.close()
