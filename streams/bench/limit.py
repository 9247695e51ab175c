"""The limit: bare consumers that drain the telemetry topics and do nothing else, with the
agents' parallelism, so that no ratio to it can honestly exceed 1.

* ``drain_limit``: ``workers`` processes (as many as the agents run), the partitions shared
  out among them, each a confluent-kafka consumer with fetches tuned for throughput rather
  than batching (``fetch.wait.max.ms`` 10, no ``fetch.min.bytes`` wait: a drain that waited
  on the broker measured the broker's patience, not the most a consumer can read). Each
  process reads its share once untimed (connections, leaders, page cache: the agents are
  connected and assigned before their drain is timed), then again from offset 0, timed from
  the moment every process is ready to the last one done.
* ``kafka_tool_limit``: Kafka's own ``org.apache.kafka.tools.ConsumerPerformance`` (the
  ``kafka-tools`` jar of the broker's release) over the same topics, one after another, as a
  cross-check from outside Python.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import subprocess
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from infra.topics import TELEMETRY_TOPICS
from streams.io.kafka import make_consumer
from streams.procstats import proc_stats
from streams.settings import Settings, default_home

DRAIN_TUNING: dict[str, Any] = {
    "fetch.wait.max.ms": 10,
    "fetch.min.bytes": 1,
    "queued.min.messages": 200_000,
    "queued.max.messages.kbytes": 262_144,
}


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


def _drain_share(
    settings: Settings, share: dict[tuple[str, int], int], ready: Any, out: Connection
) -> None:
    """One limit process: read ``share`` (partition -> end offset) from offset 0 to its end."""
    consumer = make_consumer(
        settings, f"spillway-bench-limit-{uuid.uuid4().hex[:6]}", **DRAIN_TUNING
    )
    total = sum(share.values())
    # A first, untimed pass connects, learns the leaders and warms the broker's page cache,
    # as the agents are connected and assigned before their drain is timed; then back to 0.
    _read(consumer, share, total)
    before = proc_stats(os.getpid())
    ready.wait()
    t0 = time.time()
    got, nbytes = _read(consumer, share, total)
    t1 = time.time()
    after = proc_stats(os.getpid())
    consumer.close()
    out.send(
        {
            "messages": got,
            "bytes": nbytes,
            "t0": t0,
            "t1": t1,
            "cpu_s": after.cpu_s - before.cpu_s,
            "peak_rss_mb": after.peak_rss_mb,
        }
    )
    out.close()


def _read(consumer: Any, share: dict[tuple[str, int], int], total: int) -> tuple[int, int]:
    consumer.assign([TopicPartition(t, p, 0) for (t, p) in share])
    got = nbytes = 0
    while got < total:
        # consume() blocks until it holds num_messages or times out: never ask for more than
        # is left, or the last call waits out its whole timeout (the old limit's lost second).
        for m in consumer.consume(min(10_000, total - got), timeout=1.0):
            if m.error() is None:
                got += 1
                nbytes += len(m)
    return got, nbytes


def drain_limit(settings: Settings, workers: int = 1) -> dict[str, float]:
    """Read every telemetry message from the start to the current end with ``workers``
    processes; time it from the moment all are ready until the last is done."""
    ends = end_offsets(settings)
    shares: list[dict[tuple[str, int], int]] = [{} for _ in range(max(1, workers))]
    for i, (tp, end) in enumerate(sorted(ends.items(), key=lambda kv: -kv[1])):
        shares[i % len(shares)][tp] = end
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(len(shares))
    pipes = []
    procs = []
    for share in shares:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_drain_share, args=(settings, share, ready, child))
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    rows = [p.recv() for p in pipes]
    for proc in procs:
        proc.join(60)
    t0 = min(r["t0"] for r in rows)
    t1 = max(r["t1"] for r in rows)
    return {
        "workers": float(len(shares)),
        "messages": float(sum(r["messages"] for r in rows)),
        "bytes": float(sum(r["bytes"] for r in rows)),
        "wall_s": t1 - t0,
        "cpu_s": sum(r["cpu_s"] for r in rows),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
    }


def _kafka_libs(settings: Settings) -> Path:
    """The broker's jars (kafka-tools among them): this home's, else the checkout's."""
    checkout = default_home() / "kafka-libs" / settings.kafka_version
    for libs in (settings.kafka_libs_dir, checkout):
        if list(libs.glob("kafka-tools-*.jar")):
            return libs
    raise RuntimeError(
        f"no kafka-tools jar in {settings.kafka_libs_dir}: run `spillway broker fetch`"
    )


_RESULT = re.compile(r"^\d{4}-\d\d-\d\d [^,]+, \d{4}-\d\d-\d\d [^,]+,(.*)$")


def parse_consumer_performance(stdout: str) -> dict[str, float]:
    """The result line of ``ConsumerPerformance`` (header hidden): consumed MB and messages,
    and the fetch time in ms (the time spent consuming, rebalance left out)."""
    for line in stdout.splitlines():
        m = _RESULT.match(line.strip())
        if m:
            fields = [float(x) for x in m.group(1).split(",")]
            # data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
            # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
            return {"mb": fields[0], "messages": fields[2], "fetch_ms": fields[5]}
    raise ValueError(f"no result line in ConsumerPerformance output: {stdout[-500:]!r}")


def kafka_tool_limit(settings: Settings) -> dict[str, float] | None:
    """Kafka's ConsumerPerformance over each telemetry topic in turn: messages and the summed
    fetch time (JVM start and group joins left out). Plain connections only: on a secured
    broker the figure is left out (``None``) rather than measured with other settings."""
    if settings.kafka_security_protocol != "PLAINTEXT":
        return None
    ends = end_offsets(settings)
    per_topic: dict[str, int] = {}
    for (topic, _), end in ends.items():
        per_topic[topic] = per_topic.get(topic, 0) + end
    classpath = str(_kafka_libs(settings) / "*")
    messages = fetch_ms = mb = 0.0
    for topic, count in per_topic.items():
        if not count:
            continue
        done = subprocess.run(
            [
                "java",
                "-cp",
                classpath,
                "org.apache.kafka.tools.ConsumerPerformance",
                "--bootstrap-server",
                settings.kafka_bootstrap_servers,
                "--topic",
                topic,
                "--messages",
                str(count),
                "--group",
                f"spillway-bench-kafka-tool-{uuid.uuid4().hex[:6]}",
                "--hide-header",
                "--timeout",
                "30000",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ConsumerPerformance on {topic} failed: {done.stderr[-800:]}")
        row = parse_consumer_performance(done.stdout)
        messages += row["messages"]
        fetch_ms += row["fetch_ms"]
        mb += row["mb"]
    return {"messages": messages, "fetch_s": fetch_ms / 1000.0, "mb": mb}
