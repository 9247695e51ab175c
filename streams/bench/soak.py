"""Soak: the agents and the sink live for N minutes; their RSS sampled over time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.provision import delete_namespace, provision
from streams.agents.sites import publish_site
from streams.pipeline.procs import child_env, start_child
from streams.settings import Settings
from streams.sim.encode import Encoding
from streams.sim.runner import run_simulator
from streams.site_file import load_site_file
from streams.site_scale import scale_site

REFERENCE = Path(__file__).resolve().parents[2] / "infra" / "sites" / "reference-400mw.toml"


def soak(
    base: Settings,
    minutes: float,
    scale: float,
    say: Callable[[str], None],
    every_s: float = 15,
    encoding: Encoding = "json",
) -> dict[str, Any]:
    ns = f"soak{uuid.uuid4().hex[:8]}"
    home = base.home / "soak" / ns
    settings = base.model_copy(update={"topic_namespace": ns, "home": home})
    provision(settings)
    site_file = scale_site(load_site_file(REFERENCE), scale)
    publish_site(settings, site_file.site)
    env = child_env(settings, home)
    children = [
        start_child(
            "agents",
            ["agents", "--site", site_file.site.site_id, "--data-dir", str(home / "agents")],
            env,
            home / "agents.log",
        ),
        start_child("sink", ["sink", "--publish-every", "60"], env, home / "sink.log"),
    ]
    stop = threading.Event()
    seconds = int(minutes * 60)
    sim = threading.Thread(
        target=run_simulator,
        kwargs={
            "settings": settings,
            "site": site_file.site,
            "sim": site_file.sim,
            "seconds": seconds,
            "speed": 1.0,
            "stop_event": stop,
            "encoding": encoding,
        },
        daemon=True,
    )
    series: list[dict[str, float]] = []
    t0 = time.monotonic()
    sim.start()
    try:
        while sim.is_alive():
            sim.join(every_s)
            row: dict[str, float] = {"t_s": round(time.monotonic() - t0, 1)}
            for child in children:
                if not child.alive():
                    raise RuntimeError(f"{child.name} died during the soak; log {child.log}")
                child.sample()
                from streams.procstats import proc_stats

                row[f"{child.name}_rss_mb"] = round(proc_stats(child.proc.pid).rss_mb, 1)
            series.append(row)
            say(f"soak {row}")
    finally:
        stop.set()
        for child in children:
            child.stop()
        delete_namespace(settings)
    half = len(series) // 2
    growth: dict[str, float] = {}
    for name in ("agents", "sink"):
        key = f"{name}_rss_mb"
        if half:
            first = sum(r[key] for r in series[:half]) / half
            second = sum(r[key] for r in series[half:]) / (len(series) - half)
            growth[f"{name}_rss_growth_mb_second_half_vs_first"] = round(second - first, 1)
    return {"minutes": minutes, "scale": scale, "encoding": encoding, "samples": series, **growth}
