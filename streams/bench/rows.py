"""The `spillway` and `sink` rows of the benchmark."""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from infra.topics import TELEMETRY_TOPICS
from streams.procstats import proc_stats
from streams.settings import Settings
from streams.sim.encode import Encoding


def agents_row(
    scale: float,
    seconds: int,
    live_seconds: int = 10,
    workers: int = 1,
    encoding: Encoding = "json",
) -> dict[str, Any]:
    """The real agents (``workers`` worker processes, one group) on the same simulated site
    and seed: throughput on a backlog already in the topics (produced while the workers are
    paused), then latency from the readings' timestamp to their SitePower, live."""
    from streams.bench import agents as bench

    args = argparse.Namespace(
        seconds=seconds,
        scale=scale,
        live_seconds=live_seconds,
        lateness=2,
        workers=workers,
        timeout=300.0,
        profile=None,
        keep=False,
        produce_while_draining=False,
        loglevel="warn",
        encoding=encoding,
        log=str(Path(tempfile.mkdtemp(prefix="spillway-bench-agents-")) / "worker.log"),
    )
    return bench.run(args)


def sink_row(settings: Settings) -> dict[str, float]:
    """The mart sink draining the pre-produced telemetry into DuckDB (1-minute rollups)."""
    import os

    from streams.marts.sink import run_sink

    db = Path(tempfile.mkdtemp(prefix="spillway-bench-sink-")) / "sink.duckdb"
    before = proc_stats(os.getpid())
    t0 = time.perf_counter()
    stats = run_sink(
        settings,
        threading.Event(),
        db_path=db,
        group_id=f"{settings.topic_namespace}.bench-sink",
        topics=TELEMETRY_TOPICS,
        once=True,
        idle_s=3.0,
        publish_every_s=None,
        publisher=None,
    )
    wall = time.perf_counter() - t0
    after = proc_stats(os.getpid())
    busy = stats.busy_s or wall
    rows = sum(stats.rows.values())
    return {
        "messages": float(stats.messages),
        "rows": float(rows),
        "busy_s": busy,
        "write_s": stats.write_s,
        "messages_per_s": stats.messages / busy if busy else 0.0,
        "rows_per_s": rows / stats.write_s if stats.write_s else 0.0,
        "cpu_s": after.cpu_s - before.cpu_s,
        "peak_rss_mb": after.peak_rss_mb,
    }
