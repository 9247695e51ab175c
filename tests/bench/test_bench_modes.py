"""The agents' bench in both throughput modes, against the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from streams.settings import Settings

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("while_draining", [False, True])
def test_agents_bench_times_the_backlog_in_either_mode(
    kafka_base_settings: Settings, while_draining: bool
) -> None:
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_base_settings.kafka_bootstrap_servers)
    args = [sys.executable, "-m", "streams.bench.agents", "--scale", "0.01", "--seconds", "4"]
    args += ["--live-seconds", "3", "--workers", "1"]
    if while_draining:
        args.append("--produce-while-draining")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-20000:]
    result = json.loads(done.stdout)
    assert result["backlog_produced_while_draining"] is while_draining
    assert result["backlog_readings"] > 0 and result["backlog_messages"] > 0
    # Paused or not, every second of the backlog that can close reached a SitePower in time.
    assert result["readings_per_s"] > 0 and result["drain_s"] > 0
    assert result["workers_cpu_s"] > 0
    assert result["late_readings_backlog"] == 0
