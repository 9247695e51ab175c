"""Avoided transmission cost (4CP/12CP) of a report period: pure frames in, one table out.

16 TAC §25.192(b)(1) (*looked up*): next year's transmission charge is the site's average
kW in the ERCOT monthly system peak intervals (June-September for 4CP; every month for the
12CP the PUCT is weighing) x the rate. Curtailing in a peak interval lowers that tag; the
avoided cost is (baseline tag - metered tag) x rate (``transforms.four_cp``).

The baseline of a peak interval is its POI energy plus the mining energy curtailed in it:
for each curtailment event overlapping the interval, its ``baseline_mining_w`` over the
overlap less the mining energy metered over the overlap (the interval's mining MWh pro
rata), never below 0. The tag is a sum over peak intervals divided by n, so a month's rows
give that month's share of the year's figure, and a year period the whole year.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from transforms.calendar import INTERVAL_S
from transforms.four_cp import CpMethod, avoided_transmission_cost
from transforms.settlement import MWH

COLUMNS = [
    "year",
    "method",
    "rate_usd_per_kw_year",
    "peaks",
    "tag_kw",
    "baseline_tag_kw",
    "transmission_usd",
    "avoided_usd",
]


@dataclass(frozen=True)
class FourCpInput:
    """The site's posted peak intervals (``[interval_start_s]``), rate and method."""

    peaks: pl.DataFrame
    rate_usd_per_kw_year: Decimal
    method: CpMethod = "4CP"


def peak_load(rows: pl.DataFrame, events: pl.DataFrame | None) -> pl.DataFrame:
    """``[interval_start_s, poi_mwh, baseline_mwh]`` of settlement ``rows`` (``poi_mwh``,
    ``mining_mwh``), the baseline adding the mining energy events curtailed (module doc)."""
    load = rows.select(
        pl.col("interval_start_s").cast(pl.Int64), pl.col("poi_mwh"), pl.col("mining_mwh")
    )
    if events is None or events.height == 0:
        return load.select("interval_start_s", "poi_mwh", pl.col("poi_mwh").alias("baseline_mwh"))
    latest = events.sort("ts_s").group_by("event_id").last()
    ev = latest.select(
        pl.col("issued_at_s").cast(pl.Float64).alias("_on"),
        pl.col("ended_at_s").cast(pl.Float64).fill_null(float("inf")).alias("_off"),
        pl.col("baseline_mining_w").cast(pl.Float64).alias("_w"),
    )
    start = pl.col("interval_start_s").cast(pl.Float64)
    overlap = pl.min_horizontal(pl.col("_off"), start + INTERVAL_S) - pl.max_horizontal(
        pl.col("_on"), start
    )
    curtailed = (
        load.join(ev, how="cross")
        .with_columns(overlap.alias("_s"))
        .filter(pl.col("_s") > 0)
        .with_columns(
            (
                pl.col("_w") * pl.col("_s") / 3.6e9
                - pl.col("mining_mwh").cast(pl.Float64) * pl.col("_s") / INTERVAL_S
            )
            .clip(lower_bound=0.0)
            .alias("_c")
        )
        .group_by("interval_start_s")
        .agg(pl.col("_c").sum().round(6).cast(MWH).alias("_c"))
    )
    return load.join(curtailed, on="interval_start_s", how="left").select(
        "interval_start_s",
        "poi_mwh",
        (pl.col("poi_mwh") + pl.col("_c").fill_null(0)).cast(MWH).alias("baseline_mwh"),
    )


def transmission_table(
    rows: pl.DataFrame, events: pl.DataFrame | None, cp: FourCpInput, start_s: int, end_s: int
) -> pl.DataFrame:
    """``COLUMNS``, one row per peak year with a peak in ``[start_s, end_s)``: the tag, the
    transmission cost and the avoided cost that this period's peak intervals contribute."""
    peaks = cp.peaks.filter(
        (pl.col("interval_start_s") >= start_s) & (pl.col("interval_start_s") < end_s)
    )
    load = peak_load(rows.join(peaks, on="interval_start_s", how="semi"), events)
    out = avoided_transmission_cost(load, peaks, cp.rate_usd_per_kw_year, cp.method)
    return out.with_columns(
        pl.lit(cp.method).alias("method"),
        pl.lit(str(cp.rate_usd_per_kw_year)).alias("rate_usd_per_kw_year"),
    ).select(COLUMNS)
