"""Month-close carbon report: the hourly carbon mart of one site over a local month.

Quantities are fixed once to decimals, MWh at 6 places (1 Wh) and grams at 3 (1 mg, far below
the precision of any published intensity), so the daily and summary totals are exact sums of
the CSV rows. Intensities and the CFE share are ratios: they stay floats, and the period's
intensities are recomputed from the summed grams and MWh (energy-weighted), never averaged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl

from transforms.carbon import COLUMNS as CARBON_COLUMNS
from transforms.gates import GateResult
from transforms.reports.common import (
    Gate,
    Source,
    choose_site,
    decimal_totals,
    local_text,
    need,
    run_gates,
)
from transforms.reports.errors import NothingPublished
from transforms.reports.period import Period

GRAMS = pl.Decimal(38, 3)
MWH = pl.Decimal(38, 6)

MWH_COLS = [
    "ai_mwh",
    "mining_mwh",
    "overhead_mwh",
    "total_mwh",
    "cfe_contracted_mwh",
    "cfe_matched_mwh",
    "curtailed_mwh",
]
GRAM_COLS = [
    "location_g",
    "ai_location_g",
    "mining_location_g",
    "market_g",
    "ai_market_g",
    "mining_market_g",
    "avoided_g",
]
CALENDAR = ["hour_start_local", "market_date", "hour_ending"]


@dataclass(frozen=True)
class CarbonReport:
    period: Period
    site_id: str
    hours: pl.DataFrame
    """One row per hour with data: calendar, then carbon columns (Decimal MWh and grams)."""
    daily: pl.DataFrame
    summary: pl.DataFrame
    gates: list[GateResult]
    sources: list[Source]
    generated_at_s: float
    notes: list[str] = field(default_factory=list)


def build_carbon_report(
    period: Period,
    carbon: pl.DataFrame,
    *,
    gate: Gate,
    site_id: str | None = None,
    sources: Sequence[Source] = (),
    now_s: float | None = None,
) -> CarbonReport:
    """Report tables of one site's hourly carbon (``COLUMNS["carbon_hourly"]``) in ``period``;
    ``gate`` runs on the period's carbon rows as published (floats)."""
    need(carbon, list(CARBON_COLUMNS["carbon_hourly"]), "carbon_hourly")
    site = choose_site(carbon, site_id, f"carbon_hourly for {period.label}")
    c = carbon.filter(
        pl.col("hour_start_s") >= period.start_s,
        pl.col("hour_start_s") < period.end_s,
        pl.col("site_id") == site,
    ).sort("hour_start_s")
    if c.height == 0:
        raise NothingPublished(f"carbon_hourly: no hours of site {site!r} in {period.label}")
    gates = run_gates(gate, {"carbon_hourly": c})
    cal = period.hours().select("hour_start_s", *CALENDAR)
    rows = (
        c.join(cal, on="hour_start_s", how="left")
        .with_columns(
            local_text("hour_start_local"),
            *(pl.col(k).cast(MWH) for k in MWH_COLS),
            *(pl.col(k).cast(GRAMS) for k in GRAM_COLS),
        )
        .select(
            "site_id",
            "hour_start_s",
            *CALENDAR,
            *[k for k in CARBON_COLUMNS["carbon_hourly"] if k not in ("site_id", "hour_start_s")],
        )
    )
    expected = period.hours().height
    summary = _summary(period, site, rows, expected)
    daily = _daily(period, rows)
    notes = []
    if rows.height < expected:
        notes.append(
            f"{expected - rows.height} of {expected} hours of {period.label} have no "
            "carbon row (missing data is not interpolated)"
        )
    if rows["avoided_g"].null_count():
        notes.append(
            f"{rows['avoided_g'].null_count()} hour(s) have no marginal signal: "
            "avoided emissions are not counted for them"
        )
    return CarbonReport(
        period,
        site,
        rows,
        daily,
        summary,
        gates,
        list(sources),
        time.time() if now_s is None else now_s,
        notes,
    )


def _ratios(t: dict[str, Decimal]) -> dict[str, float | None]:
    kwh = t["total_mwh"] * 1000
    return {
        "location_g_per_kwh": float(t["location_g"] / kwh) if kwh else None,
        "market_g_per_kwh": float(t["market_g"] / kwh) if kwh else None,
        "cfe_share": float(t["cfe_matched_mwh"] / t["total_mwh"]) if t["total_mwh"] else None,
    }


def _summary(period: Period, site: str, rows: pl.DataFrame, expected: int) -> pl.DataFrame:
    totals = decimal_totals(rows, [*MWH_COLS, *GRAM_COLS])
    head: dict[str, object] = {
        **period.summary_head(site),
        "hours_expected": expected,
        "hours_reported": rows.height,
        "hours_missing": expected - rows.height,
    }
    schema: dict[str, pl.DataType] = {
        k: pl.String() if isinstance(v, str) else pl.Int64() for k, v in head.items()
    }
    schema |= {k: rows.schema[k] for k in totals}
    schema |= {k: pl.Float64() for k in ("location_g_per_kwh", "market_g_per_kwh", "cfe_share")}
    return pl.DataFrame([head | totals | _ratios(totals)], schema=schema)


def _daily(period: Period, rows: pl.DataFrame) -> pl.DataFrame:
    per_day = (
        period.hours().group_by("market_date").agg(pl.len().cast(pl.Int64).alias("hours_expected"))
    )
    got = rows.group_by("market_date").agg(
        pl.len().cast(pl.Int64).alias("hours_reported"),
        *(pl.col(k).sum() for k in [*MWH_COLS, *GRAM_COLS]),
    )
    return per_day.join(got, on="market_date", how="inner").sort("market_date")
