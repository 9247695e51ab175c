"""Marts a report needs but that were not published, derived from what was (pure frames):
interval energy from 1-second site power, settlement from interval energy + prices + the
site's contract, hourly carbon from interval energy + grid intensity. The arithmetic is
``transforms``'s; this module only shapes the inputs."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from schemas.site import SiteConfig
from transforms.calendar import HOUR_S, INTERVAL_S
from transforms.carbon import build_carbon_hourly
from transforms.energy import SITE_POWER_COLUMNS, interval_energy
from transforms.reports.common import need
from transforms.reports.errors import ReportInputError
from transforms.settlement import PRICE


def sample_period_s(site_power: pl.DataFrame) -> float:
    """The sampling period of site power: the most common spacing of consecutive samples."""
    d = (
        site_power.sort("site_id", "ts_s")
        .select((pl.col("ts_s").diff().over("site_id")).alias("d"))
        .drop_nulls()
        .filter(pl.col("d") > 0)
    )
    if d.height == 0:
        return 1.0
    common = d["d"].mode().min()
    if not isinstance(common, int | float):
        raise TypeError(f"sample spacing is {common!r}")
    return float(common)


def energy_from_site_power(
    site_power: pl.DataFrame, *, period_s: float | None = None, max_gap_s: float | None = None
) -> pl.DataFrame:
    """``interval_energy`` of site power sampled every ``period_s`` (inferred when None);
    a gap is a spacing over ``max_gap_s`` (default 5 periods, at least 5 s)."""
    need(site_power, SITE_POWER_COLUMNS, "site_power")
    p = period_s or sample_period_s(site_power)
    gap = max_gap_s if max_gap_s is not None else min(max(5.0, 5 * p), float(INTERVAL_S))
    return interval_energy(site_power.select(SITE_POWER_COLUMNS), period_s=p, max_gap_s=gap)


def contracts_frame(site: SiteConfig) -> pl.DataFrame:
    """The site's contract blocks as ``build_settlement`` wants them; prices go to Decimal
    through their shortest text (34.5 -> 34.500000), never through float arithmetic."""
    if not site.contract:
        raise ReportInputError(f"site {site.site_id}: no contract blocks")
    return pl.DataFrame(
        {
            "site_id": [site.site_id] * len(site.contract),
            "start_s": [int(b.start_s) for b in site.contract],
            "end_s": [int(b.end_s) for b in site.contract],
            "mw": [float(b.mw) for b in site.contract],
            "price_usd_per_mwh": [Decimal(repr(b.price_usd_per_mwh)) for b in site.contract],
        },
        schema={
            "site_id": pl.String,
            "start_s": pl.Int64,
            "end_s": pl.Int64,
            "mw": pl.Float64,
            "price_usd_per_mwh": PRICE,
        },
    )


def rt_prices_from_grid(
    grid_prices: pl.DataFrame, settlement_point: str, kind: str = "rt"
) -> pl.DataFrame:
    """``[interval_start_s, price_usd_per_mwh]`` at one settlement point from the published
    ``grid_prices`` table."""
    need(
        grid_prices,
        ["settlement_point", "kind", "interval_start_s", "price_usd_per_mwh"],
        "grid_prices",
    )
    p = grid_prices.filter(pl.col("settlement_point") == settlement_point, pl.col("kind") == kind)
    if p.height == 0:
        have = sorted(set(zip(grid_prices["settlement_point"], grid_prices["kind"], strict=True)))
        raise ReportInputError(
            f"grid_prices: no {kind!r} prices at {settlement_point!r}; present: {have[:10]}"
        )
    return p.select(
        pl.col("interval_start_s").cast(pl.Int64), pl.col("price_usd_per_mwh").cast(PRICE)
    )


def hourly_to_interval_prices(hourly: pl.DataFrame) -> pl.DataFrame:
    """Each hourly price applied to its four 15-minute intervals
    (``[hour_start_s, price_usd_per_mwh]`` -> ``[interval_start_s, price_usd_per_mwh]``)."""
    need(hourly, ["hour_start_s", "price_usd_per_mwh"], "hourly prices")
    offsets = pl.DataFrame(
        {"_o": [k * INTERVAL_S for k in range(HOUR_S // INTERVAL_S)]}, schema={"_o": pl.Int64}
    )
    return (
        hourly.select(pl.col("hour_start_s").cast(pl.Int64), "price_usd_per_mwh")
        .join(offsets, how="cross")
        .select(
            (pl.col("hour_start_s") + pl.col("_o")).alias("interval_start_s"),
            pl.col("price_usd_per_mwh").cast(PRICE),
        )
        .sort("interval_start_s")
    )


def intensity_from_grid(grid_carbon: pl.DataFrame) -> pl.DataFrame:
    """``[hour_start_s, intensity_g_per_kwh]`` from the published ``grid_carbon`` average
    rows of one region."""
    need(grid_carbon, ["region", "kind", "hour_start_s", "intensity_g_per_kwh"], "grid_carbon")
    avg = grid_carbon.filter(pl.col("kind") == "average")
    regions = avg["region"].unique().to_list()
    if len(regions) != 1:
        raise ReportInputError(
            f"grid_carbon: need average intensity of exactly one region, found {sorted(regions)}"
        )
    return avg.select(pl.col("hour_start_s").cast(pl.Int64), "intensity_g_per_kwh")


def carbon(
    energy: pl.DataFrame, intensity: pl.DataFrame, intensity_col: str = "intensity_g_per_kwh"
) -> pl.DataFrame:
    """``build_carbon_hourly`` on the energy (location- and market-based; no CFE contracts)."""
    return build_carbon_hourly(energy, intensity, intensity_col=intensity_col)
