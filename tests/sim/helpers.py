"""Small sites for the simulator tests, built from infra/sites/small.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec

from schemas.site import SiteConfig
from streams.sim.spec import SimSpec
from streams.site_file import SiteFile, parse_site

SITES = Path(__file__).resolve().parents[2] / "infra" / "sites"
SMALL = SITES / "small.toml"
REFERENCE = SITES / "reference-400mw.toml"
T0 = 1_782_864_000.0
"""2026-07-01T00:00:00Z."""


def small_raw() -> dict[str, Any]:
    return tomllib.loads(SMALL.read_text())


def small(**sim: Any) -> SiteFile:
    """The small site with ``[sim]`` keys overridden."""
    raw = small_raw()
    raw["sim"] = {**raw.get("sim", {}), **sim}
    return parse_site(raw, "small.toml")


def all_reporting(sf: SiteFile) -> tuple[SiteConfig, SimSpec]:
    """The same site with every miner on firmware that reports wattage."""
    models = [msgspec.structs.replace(m, firmware="braiins") for m in sf.site.asic_models]
    return msgspec.structs.replace(sf.site, asic_models=models), sf.sim
