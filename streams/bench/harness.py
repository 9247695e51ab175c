"""The benchmark run: pre-produce the site's telemetry once, then measure each consumer on it.

Rows: ``limit`` (bare confluent-kafka drain), ``naive`` (per-event faust agent), ``faust
floor`` (the agents' faust app and batching, doing nothing with the frames), ``spillway`` (the
real agents) and ``sink`` (the DuckDB mart sink), plus ratios. Every row
runs on the same data in the same run, so the ratios hold even on a noisy machine.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.provision import delete_namespace, provision
from streams.bench.limit import drain_limit, kafka_tool_limit
from streams.bench.rows import agents_row, sink_row
from streams.bench.workers import time_faust_worker
from streams.settings import Settings
from streams.sim.encode import Encoding
from streams.sim.runner import run_simulator
from streams.site_file import load_site_file
from streams.site_scale import scale_site

REFERENCE_SITE = Path(__file__).resolve().parents[2] / "infra" / "sites" / "reference-400mw.toml"

Say = Callable[[str], None]
NAIVE_APP = "streams.bench.naive_app"
FLOOR_APP = "streams.bench.floor_app"


def _quiet(_: str) -> None:
    pass


def preproduce(
    settings: Settings,
    scale: float,
    seconds: int,
    site_path: Path = REFERENCE_SITE,
    encoding: Encoding = "json",
) -> dict[str, Any]:
    """A fresh namespace with ``seconds`` of the scaled site's telemetry in it."""
    site_file = scale_site(load_site_file(site_path), scale)
    stats = run_simulator(
        settings,
        site_file.site,
        sim=site_file.sim,
        start_s=time.time() - seconds,
        seconds=seconds,
        speed=None,
        encoding=encoding,
    )
    return stats.summary()


def run_bench(
    base: Settings,
    *,
    scale: float = 1.0,
    seconds: int = 60,
    naive_max_s: float = 60.0,
    workers: int = 1,
    say: Say = _quiet,
    encoding: Encoding = "json",
) -> dict[str, Any]:
    settings = base.model_copy(
        update={"topic_namespace": f"bench{uuid.uuid4().hex[:8]}", "max_age_s": 30 * 86400.0}
    )
    provision(settings)
    try:
        return _measure(settings, scale, seconds, naive_max_s, workers, say, encoding)
    finally:
        # Also after a failure: a benchmark leaves no topics behind (gigabytes at scale 1).
        delete_namespace(settings)


def _measure(
    settings: Settings,
    scale: float,
    seconds: int,
    naive_max_s: float,
    workers: int,
    say: Say,
    encoding: Encoding,
) -> dict[str, Any]:
    say(f"pre-producing {seconds} s of the site at scale {scale} into {settings.topic_namespace}")
    produced = preproduce(settings, scale, seconds, encoding=encoding)
    readings = int(produced["readings"])
    say(
        f"produced {readings:,} readings in {produced['messages']:,} frames "
        f"({produced['readings_per_s']:,} readings/s)"
    )
    per_msg = readings / max(1, int(produced["messages"]))

    say(f"limit: bare confluent-kafka drain, {_workers(workers)} in parallel")
    limit = drain_limit(settings, workers=workers)
    limit["readings_per_s"] = limit["messages"] * per_msg / limit["wall_s"]
    say("limit cross-check: Kafka's ConsumerPerformance (kafka-tools), topic by topic")
    tool = kafka_tool_limit(settings)
    tool_readings_per_s = (
        tool["messages"] * per_msg / tool["fetch_s"] if tool and tool["fetch_s"] > 0 else None
    )

    workdir = Path(tempfile.mkdtemp(prefix="spillway-bench-"))
    say(f"naive: per-event faust agent, state in a faust Table (at most {naive_max_s:.0f} s)")
    naive = time_faust_worker(
        settings,
        NAIVE_APP,
        workdir,
        readings,
        naive_max_s,
        env={"SPILLWAY_BENCH_NAIVE_STATE": "table"},
    )
    say(f"naive, state in a dict (lost on a crash; at most {naive_max_s:.0f} s)")
    naive_dict = time_faust_worker(
        settings,
        NAIVE_APP,
        workdir,
        readings,
        naive_max_s,
        env={"SPILLWAY_BENCH_NAIVE_STATE": "dict"},
    )

    say("faust floor: the agents' faust app and batches, frames counted and dropped")
    floor = time_faust_worker(
        settings,
        FLOOR_APP,
        workdir,
        readings,
        naive_max_s,
        env={"SPILLWAY_BENCH_READINGS_PER_MESSAGE": repr(per_msg)},
    )

    say("sink: DuckDB mart sink over the same telemetry")
    sink = sink_row(settings)
    sink_readings_per_s = sink["messages"] * per_msg / sink["busy_s"] if sink["busy_s"] else 0.0

    say(f"spillway: the real agents ({_workers(workers)}) on the same site and seed")
    agents = agents_row(scale, seconds, workers=workers, encoding=encoding)
    spill = float(agents["readings_per_s"])

    result: dict[str, Any] = {
        "scale": scale,
        "encoding": encoding,
        "seconds": seconds,
        "readings": readings,
        "messages": produced["messages"],
        "producer_readings_per_s": produced["readings_per_s"],
        "producer_cpu_s": produced["cpu_s"],
        "limit_readings_per_s": round(limit["readings_per_s"]),
        "limit_workers": workers,
        "limit_cpu_s": round(limit["cpu_s"], 2),
        "limit_wall_s": round(limit["wall_s"], 2),
        "kafka_tool_readings_per_s": round(tool_readings_per_s) if tool_readings_per_s else None,
        "ratio_limit_to_kafka_tool": (
            _ratio(limit["readings_per_s"], tool_readings_per_s) if tool_readings_per_s else None
        ),
        "naive_readings_per_s": round(naive["readings_per_s"]),
        "naive_cpu_s": round(naive["cpu_s"], 2),
        "naive_peak_rss_mb": round(naive["peak_rss_mb"], 1),
        "naive_dict_readings_per_s": round(naive_dict["readings_per_s"]),
        "naive_dict_cpu_s": round(naive_dict["cpu_s"], 2),
        "faust_floor_readings_per_s": round(floor["readings_per_s"]),
        "faust_floor_cpu_s": round(floor["cpu_s"], 2),
        "faust_floor_peak_rss_mb": round(floor["peak_rss_mb"], 1),
        "workers": workers,
        "readings_per_s": round(spill),
        # Every reading of a second is stamped with the second's start and sent then: the
        # latency from a reading's timestamp to the SitePower it completes.
        **latency_ms(agents),
        "latency_p99_from_second_end_ms": round(agents["latency_from_second_end_s"]["p99"] * 1000),
        "agents_lateness_s": agents["lateness_s"],
        # False: the backlog was in the topics before the workers went on (see agents' bench).
        "agents_backlog_produced_while_draining": agents["backlog_produced_while_draining"],
        "sink_rows_per_s": round(sink["rows_per_s"]),
        "sink_readings_per_s": round(sink_readings_per_s),
        "sink_cpu_s": round(sink["cpu_s"], 2),
        "peak_rss_mb": round(
            max(naive["peak_rss_mb"], sink["peak_rss_mb"], limit["peak_rss_mb"]), 1
        ),
        "ratio_spillway_to_limit": _ratio(spill, limit["readings_per_s"]),
        "ratio_faust_floor_to_limit": _ratio(floor["readings_per_s"], limit["readings_per_s"]),
        "ratio_spillway_to_faust_floor": _ratio(spill, floor["readings_per_s"]),
        "ratio_spillway_to_naive": _ratio(spill, naive["readings_per_s"], digits=2),
        "ratio_spillway_to_naive_dict": _ratio(spill, naive_dict["readings_per_s"], digits=2),
    }
    over = {
        row: result[f"ratio_{row}_to_limit"]
        for row in ("spillway", "faust_floor")
        if (result[f"ratio_{row}_to_limit"] or 0) > 1
    }
    if over:
        # A limit a consumer beats is no limit: say so rather than report the ratio as a win.
        result["limit_error"] = (
            ", ".join(f"{row} read {r}x the limit" for row, r in over.items())
            + ": the limit was disturbed or is not one; rerun on a quiet machine"
        )
        say(f"error: {result['limit_error']}")
    return result


def _ratio(a: float, b: float, digits: int = 3) -> float | None:
    """``a / b`` rounded; None when ``b`` is 0 (a row that measured nothing)."""
    return round(a / b, digits) if b else None


def latency_ms(agents: dict[str, Any]) -> dict[str, int]:
    """p50 and p99 from the readings' timestamp to their SitePower, in ms."""
    q = agents["latency_from_second_start_s"]
    return {"latency_p50_ms": round(q["p50"] * 1000), "latency_p99_ms": round(q["p99"] * 1000)}


def _workers(n: int) -> str:
    return "one worker" if n == 1 else f"{n} workers"


def scaling_rows(
    scales: list[float],
    seconds: int,
    say: Say = _quiet,
    workers: int = 1,
    encoding: Encoding = "json",
) -> list[dict[str, Any]]:
    """The real agents at each fraction of the site: how throughput and latency move with
    the load."""
    rows = []
    for scale in scales:
        say(f"scaling: the agents ({_workers(workers)}) at {scale:g} of the site")
        r = agents_row(scale, seconds, workers=workers, encoding=encoding)
        rows.append(
            {
                "scale": scale,
                "workers": workers,
                "readings_per_site_second": r["readings_per_site_second"],
                "readings_per_s": r["readings_per_s"],
                **latency_ms(r),
                "late_readings": r["late_readings_backlog"] + r["late_readings_live"],
            }
        )
    return rows
