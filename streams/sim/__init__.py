"""Closed-loop 1 Hz site simulator: GPU, ASIC and meter telemetry for a site file, reacting
to miner commands. ``model`` is pure (numpy); ``runner`` does the Kafka I/O.

Start it from another process or test::

    from streams.site_file import load_site_file
    from streams.sim.runner import run_simulator

    sf = load_site_file("infra/sites/small.toml")
    stats = run_simulator(settings, sf.site, sim=sf.sim, seconds=60, speed=None)
"""

from __future__ import annotations

from typing import Any

from streams.sim.faults import FaultConfig
from streams.sim.spec import JobSpec, SimSpec

__all__ = ["FaultConfig", "JobSpec", "SimSpec", "SimStats", "SiteModel", "run_simulator"]


def __getattr__(name: str) -> Any:
    # Lazy: importing streams.sim (e.g. via streams.site_file) must not pull numpy or Kafka.
    if name == "SiteModel":
        from streams.sim.model import SiteModel

        return SiteModel
    if name in ("SimStats", "run_simulator"):
        from streams.sim import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'streams.sim' has no attribute {name!r}")
