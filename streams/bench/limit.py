"""The limit: a bare confluent-kafka consumer that drains the telemetry topics and does
nothing else. The most a Python process can read here."""

from __future__ import annotations

import os
import time
import uuid

from confluent_kafka import TopicPartition

from infra.topics import TELEMETRY_TOPICS
from streams.io.kafka import make_consumer
from streams.procstats import proc_stats
from streams.settings import Settings


def end_offsets(
    settings: Settings, topics: tuple[str, ...] = TELEMETRY_TOPICS
) -> dict[tuple[str, int], int]:
    """High watermark of every partition of ``topics`` (base names)."""
    from infra.topics import full_name

    consumer = make_consumer(settings, f"spillway-bench-probe-{uuid.uuid4().hex[:6]}")
    try:
        out: dict[tuple[str, int], int] = {}
        meta = consumer.list_topics(timeout=10)
        for base in topics:
            name = full_name(base, settings.topic_namespace)
            for p in meta.topics[name].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                out[(name, p)] = high
        return out
    finally:
        consumer.close()


def drain_limit(settings: Settings) -> dict[str, float]:
    """Read every telemetry message from the start to the current end; time it."""
    ends = end_offsets(settings)
    total = sum(ends.values())
    consumer = make_consumer(
        settings, f"spillway-bench-limit-{uuid.uuid4().hex[:6]}", **{"fetch.min.bytes": 1_000_000}
    )
    consumer.assign([TopicPartition(t, p, 0) for (t, p) in ends])
    before = proc_stats(os.getpid())
    got = 0
    nbytes = 0
    t0 = time.perf_counter()
    first: tuple[float, int] | None = None
    """When the first batch came, and how many messages it held."""
    while got < total:
        for m in consumer.consume(10_000, timeout=1.0):
            if m.error() is None:
                got += 1
                nbytes += len(m.value() or b"")
        if first is None and got:
            first = (time.perf_counter(), got)
    end = time.perf_counter()
    wall = end - t0
    after = proc_stats(os.getpid())
    consumer.close()
    return {
        "messages": float(got),
        "bytes": float(nbytes),
        "wall_s": wall,
        # As the faust floor is timed: from the first message in, start-up left out.
        "messages_after_first_batch": float(got - first[1]) if first else 0.0,
        "wall_after_first_batch_s": end - first[0] if first else 0.0,
        "cpu_s": after.cpu_s - before.cpu_s,
        "peak_rss_mb": after.peak_rss_mb,
    }
