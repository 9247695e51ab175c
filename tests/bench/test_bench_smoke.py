"""`spillway bench --json` runs end to end on a small slice and prints every figure.

A smoke test of the benchmark's plumbing against the real broker: it checks the JSON, never
the speed (speed is measured by running the benchmark, not by timed tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings

pytestmark = pytest.mark.kafka

KEYS = {
    "readings_per_s",
    "limit_readings_per_s",
    "naive_readings_per_s",
    "naive_dict_readings_per_s",
    "faust_floor_readings_per_s",
    "sink_rows_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "peak_rss_mb",
    "ratio_spillway_to_limit",
    "ratio_spillway_to_naive",
}


@pytest.mark.parametrize("encoding", ["json", "packed"])
def test_bench_json_smoke(kafka_base_settings: Settings, tmp_path: Path, encoding: str) -> None:
    result: dict[str, Any] = _bench(
        kafka_base_settings,
        tmp_path,
        *("--scale", "0.05", "--seconds", "5", "--naive-max-s", "10", "--encoding", encoding),
    )
    assert KEYS <= set(result), KEYS - set(result)
    assert result["encoding"] == encoding
    for key in (
        "readings_per_s",
        "limit_readings_per_s",
        "naive_readings_per_s",
        "naive_dict_readings_per_s",
        "faust_floor_readings_per_s",
        "sink_rows_per_s",
        "peak_rss_mb",
    ):
        assert result[key] > 0, key
    assert result["readings"] > 0 and result["messages"] > 0
    # The limit runs with the agents' parallelism, cross-checked by Kafka's own tool.
    assert result["limit_workers"] == result["workers"]
    assert result["kafka_tool_readings_per_s"] > 0
    assert result["latency_p99_ms"] >= result["latency_p50_ms"] >= 0
    # Timed like the limit: the workers drained a backlog already in the topics.
    assert result["agents_backlog_produced_while_draining"] is False


def _bench(settings: Settings, tmp_path: Path, *args: str) -> dict[str, Any]:
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        SPILLWAY_HOME=str(tmp_path),
    )
    exe = str(Path(sys.executable).with_name("spillway"))
    done = subprocess.run(
        [exe, "bench", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-20000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_bench_soak_reports_rss_over_time(kafka_base_settings: Settings, tmp_path: Path) -> None:
    result = _bench(kafka_base_settings, tmp_path, "--soak", "0.5", "--scale", "0.01")
    samples = result["samples"]
    assert isinstance(samples, list) and len(samples) >= 2
    assert all(s["agents_rss_mb"] > 0 and s["sink_rss_mb"] > 0 for s in samples)
    assert "agents_rss_growth_mb_second_half_vs_first" in result


def test_bench_scaling_row(kafka_base_settings: Settings, tmp_path: Path) -> None:
    result = _bench(
        kafka_base_settings, tmp_path, "--scale", "0.01", "--seconds", "5",
        "--naive-max-s", "5", "--scaling", "--scaling-at", "0.01,0.02", "--workers", "2",
    )
    assert result["workers"] == 2
    rows = result["scaling"]
    assert [r["workers"] for r in rows] == [2, 2]
    assert isinstance(rows, list) and [r["scale"] for r in rows] == [0.01, 0.02]
    assert rows[1]["readings_per_site_second"] > rows[0]["readings_per_site_second"] > 0
    assert all(r["readings_per_s"] > 0 for r in rows)
