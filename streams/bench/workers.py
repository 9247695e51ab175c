"""Run a faust worker as a subprocess and time it from outside through its stats file.

The worker's side: ``report_progress`` writes the file this side reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import faust

from streams.procstats import proc_stats
from streams.settings import Settings


def report_progress(app: faust.App, progress: dict[str, Any]) -> None:
    """Have ``app`` write ``progress`` (readings, first and last event wall time) to the JSON
    file named by ``SPILLWAY_BENCH_STATS`` once a second, replaced whole each time."""
    path = os.environ.get("SPILLWAY_BENCH_STATS", f"{app.conf.id}-stats.json")

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def write_stats() -> None:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(progress, fh)
        os.replace(tmp, path)


def _env(settings: Settings, stats: Path, run: str) -> dict[str, str]:
    return dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        SPILLWAY_TOPIC_NAMESPACE=settings.topic_namespace,
        SPILLWAY_BENCH_STATS=str(stats),
        SPILLWAY_BENCH_RUN=run,
    )


def time_faust_worker(
    settings: Settings,
    app: str,
    workdir: Path,
    expected_readings: int,
    max_s: float,
    env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Start ``faust -A app worker`` (with ``env`` added to its environment); wait until it
    has read ``expected_readings`` or ``max_s`` has passed since its first event; return its
    rate, CPU and peak RSS."""
    run = str(int(time.time() * 1000))
    stats = workdir / f"{app.rsplit('.', 1)[-1]}-{run}-stats.json"
    faust_bin = str(Path(sys.executable).with_name("faust"))
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [faust_bin, "-A", app, "--datadir", str(workdir / f"faust-{run}"), "worker", "-l", "warn"],
        env={**_env(settings, stats, run), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / f"{run}.log", "wb"),  # noqa: SIM115 - closed with the process
        cwd=workdir,
    )
    progress: dict[str, float] = {}
    peak = 0.0
    try:
        deadline = time.monotonic() + max_s + 120  # allow for start-up and group join
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1.0)
            peak = max(peak, proc_stats(proc.pid).peak_rss_mb)
            try:
                progress = json.loads(stats.read_text())
            except (OSError, ValueError):
                continue
            first = progress.get("first_s")
            if progress.get("readings", 0) >= expected_readings:
                break
            if first and time.time() - first > max_s:
                break
        if proc.poll() is not None:
            raise RuntimeError(f"{app} worker exited with {proc.returncode}; see {workdir}")
        cpu = proc_stats(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    first, last = progress.get("first_s"), progress.get("last_s")
    readings = progress.get("readings", 0)
    wall = (last - first) if first and last and last > first else float("nan")
    return {
        "readings": float(readings),
        "wall_s": wall,
        "readings_per_s": readings / wall if wall == wall and wall > 0 else 0.0,
        "cpu_s": cpu.cpu_s,
        "peak_rss_mb": max(peak, cpu.peak_rss_mb),
        "complete": float(readings >= expected_readings),
    }
