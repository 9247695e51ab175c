"""Month-close settlement report: pure frames in, report tables out.

Rows are the settlement mart's intervals of one site inside the period (local month), with
the local calendar beside each (local start with offset, market date, interval of the day,
hour ending, repeated-hour flag). Money and MWh stay ``pl.Decimal``; every total in the
daily and summary tables is an exact Decimal sum of those rows, so the CSVs add up to the
cent. The energy mart, when given, adds the revenue-meter reconciliation and the data
coverage of each interval (fixed to Decimal MWh the same way the settlement mart fixes its
quantities).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

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
from transforms.reports.transmission import FourCpInput, transmission_table
from transforms.settlement import COLUMNS as SETTLEMENT_COLUMNS
from transforms.settlement import COMPONENTS, MWH

QUANTITIES = [
    "ai_mwh",
    "mining_mwh",
    "overhead_mwh",
    "poi_mwh",
    "forward_mwh",
    "day_ahead_mwh",
    "position_mwh",
    "sell_back_mwh",
    "purchase_mwh",
    "hashrate_ph_days",
]
"""Decimal quantities summed in the daily and summary tables."""

MONEY = [*COMPONENTS, "net_usd"]
"""Decimal money columns (cents) summed in the daily and summary tables."""

ENERGY_EXTRA = {
    "unabsorbed_mwh": "contract energy not used by the site (energy mart), MWh",
    "over_contract_mwh": "draw above contract (energy mart), MWh",
    "covered_s": "seconds of the interval with data, s",
    "missing_s": "seconds of the interval without data, s",
    "gap_count": "gaps longer than the limit, count",
    "poi_diff_mwh": "uses minus revenue meter (energy mart), MWh",
}

CALENDAR = ["interval_start_local", "market_date", "interval_index", "hour_ending", "repeated_hour"]

CURTAILMENT_COLUMNS = [
    "event_id",
    "reasons",
    "issued_local",
    "ended_local",
    "issued_at_s",
    "ended_at_s",
    "target_mining_w",
    "baseline_mining_w",
    "response_time_s",
    "deadline_met",
    "curtailed_mwh",
]


@dataclass(frozen=True)
class SettlementReport:
    period: Period
    site_id: str
    intervals: pl.DataFrame
    """One row per settled interval: calendar, then settlement (+ energy) columns."""
    daily: pl.DataFrame
    """One row per market date: interval counts and exact sums."""
    summary: pl.DataFrame
    """One row: counts and exact sums for the period."""
    curtailments: pl.DataFrame
    """One row per curtailment event active in the period (latest message of each)."""
    gates: list[GateResult]
    sources: list[Source]
    generated_at_s: float
    surplus_event_count: int = 0
    notes: list[str] = field(default_factory=list)
    transmission: pl.DataFrame | None = None
    """Per peak year, the 4CP/12CP tag and avoided cost of the period's peak intervals
    (``transforms.reports.transmission``); None: no peaks file given."""


def build_settlement_report(
    period: Period,
    settlement: pl.DataFrame,
    *,
    gate: Gate,
    energy: pl.DataFrame | None = None,
    curtailment_events: pl.DataFrame | None = None,
    surplus_events: pl.DataFrame | None = None,
    site_id: str | None = None,
    sources: Sequence[Source] = (),
    now_s: float | None = None,
    four_cp: FourCpInput | None = None,
) -> SettlementReport:
    """Build the report tables of one site for ``period`` (see the module doc).

    ``settlement``: ``transforms.settlement.build_settlement`` rows (``COLUMNS["settlement"]``);
    ``energy``: ``interval_energy`` rows; events: ``schemas.events`` columns. Rows outside
    the period or of other sites are ignored. ``gate`` runs on the period's settlement (and
    energy) frames. ``four_cp``: the site's posted peaks, rate and method, for the avoided
    transmission cost.
    """
    need(settlement, list(SETTLEMENT_COLUMNS["settlement"]), "settlement")
    site = choose_site(settlement, site_id, f"settlement for {period.label}")
    inside = (pl.col("interval_start_s") >= period.start_s) & (
        pl.col("interval_start_s") < period.end_s
    )
    s = settlement.filter(inside, pl.col("site_id") == site).sort("interval_start_s")
    if s.height == 0:
        raise NothingPublished(f"settlement: no intervals of site {site!r} in {period.label}")
    e = None
    if energy is not None:
        need(energy, ["site_id", "interval_start_s", *ENERGY_EXTRA], "interval_energy")
        e = energy.filter(inside, pl.col("site_id") == site).sort("interval_start_s")
        e = e if e.height else None  # energy of other months only: nothing to add or gate
    gates = run_gates(gate, {"settlement": s, "interval_energy": e})

    cal = period.intervals().select("interval_start_s", *CALENDAR)
    rows = s.join(cal, on="interval_start_s", how="left").with_columns(
        local_text("interval_start_local")
    )
    if e is not None:
        rows = rows.join(
            e.select("site_id", "interval_start_s", *ENERGY_EXTRA),
            on=["site_id", "interval_start_s"],
            how="left",
        ).with_columns(
            *(pl.col(c).cast(MWH) for c in ["unabsorbed_mwh", "over_contract_mwh", "poi_diff_mwh"])
        )
    ordered = [
        "site_id",
        "interval_start_s",
        *CALENDAR,
        *[c for c in SETTLEMENT_COLUMNS["settlement"] if c not in ("site_id", "interval_start_s")],
        *([*ENERGY_EXTRA] if e is not None else []),
    ]
    rows = rows.select(ordered)

    expected = period.intervals().height
    daily = _daily(period, rows)
    summary = _summary(period, site, rows, expected)
    curt = _curtailments(period, site, curtailment_events)
    surplus_n = 0
    if surplus_events is not None and surplus_events.height:
        se = surplus_events.filter(pl.col("site_id") == site)
        surplus_n = se["event_id"].n_unique() if "event_id" in se.columns else 0
    transmission = None
    if four_cp is not None:
        mine = None
        if curtailment_events is not None and curtailment_events.height:
            mine = curtailment_events.filter(pl.col("site_id") == site)
        transmission = transmission_table(s, mine, four_cp, period.start_s, period.end_s)
    notes = []
    if rows.height < expected:
        notes.append(
            f"{expected - rows.height} of {expected} intervals of {period.label} "
            "have no settlement row (missing data is not interpolated)"
        )
    return SettlementReport(
        period,
        site,
        rows,
        daily,
        summary,
        curt,
        gates,
        list(sources),
        time.time() if now_s is None else now_s,
        surplus_n,
        notes,
        transmission,
    )


def _daily(period: Period, rows: pl.DataFrame) -> pl.DataFrame:
    per_day = (
        period.intervals()
        .group_by("market_date")
        .agg(pl.len().cast(pl.Int64).alias("intervals_expected"))
    )
    got = rows.group_by("market_date").agg(
        pl.len().cast(pl.Int64).alias("intervals_settled"),
        *(pl.col(c).sum() for c in [*QUANTITIES, *MONEY]),
    )
    return per_day.join(got, on="market_date", how="inner").sort("market_date")


def _summary(period: Period, site: str, rows: pl.DataFrame, expected: int) -> pl.DataFrame:
    totals = decimal_totals(rows, [*QUANTITIES, *MONEY])
    not_reconciled = rows.filter(pl.col("energy_reconciled").not_()).height
    prices = rows["rt_price_usd_per_mwh"]
    head: dict[str, object] = {
        **period.summary_head(site),
        "intervals_expected": expected,
        "intervals_settled": rows.height,
        "intervals_missing": expected - rows.height,
        "intervals_not_reconciled": not_reconciled,
        "rt_price_min_usd_per_mwh": prices.min(),
        "rt_price_max_usd_per_mwh": prices.max(),
    }
    price = rows.schema["rt_price_usd_per_mwh"]
    # the row's Decimal dtypes, not a scale inferred from one value
    schema: dict[str, pl.DataType] = {
        k: pl.String() if isinstance(v, str) else pl.Int64() for k, v in head.items()
    }
    schema |= {"rt_price_min_usd_per_mwh": price, "rt_price_max_usd_per_mwh": price}
    schema |= {c: rows.schema[c] for c in totals}
    return pl.DataFrame([head | totals], schema=schema)


def _curtailments(period: Period, site: str, events: pl.DataFrame | None) -> pl.DataFrame:
    text, num = pl.String(), pl.Float64()
    schema: dict[str, pl.DataType] = {
        "event_id": text,
        "reasons": text,
        "issued_local": text,
        "ended_local": text,
        "issued_at_s": num,
        "ended_at_s": num,
        "target_mining_w": num,
        "baseline_mining_w": num,
        "response_time_s": num,
        "deadline_met": pl.Boolean(),
        "curtailed_mwh": num,
    }
    if events is None or events.height == 0:
        return pl.DataFrame(schema=pl.Schema(schema))
    need(
        events,
        [
            "event_id",
            "site_id",
            "ts_s",
            "issued_at_s",
            "reasons",
            "curtailed_wh",
            "ended_at_s",
            "target_mining_w",
            "baseline_mining_w",
            "response_time_s",
            "deadline_met",
        ],
        "curtailment_events",
    )
    latest = (
        events.filter(pl.col("site_id") == site)
        .sort("ts_s")
        .group_by("event_id", maintain_order=True)
        .last()
    )
    reasons = pl.col("reasons")
    if latest.schema["reasons"] != pl.String:
        reasons = reasons.list.join("+")

    def local(col: str) -> pl.Expr:
        return (
            pl.from_epoch(pl.col(col).cast(pl.Int64), time_unit="s")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone(period.tz)
            .dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
        )

    return (
        latest.sort("issued_at_s")
        .select(
            "event_id",
            reasons.alias("reasons"),
            local("issued_at_s").alias("issued_local"),
            local("ended_at_s").alias("ended_local"),
            "issued_at_s",
            "ended_at_s",
            "target_mining_w",
            "baseline_mining_w",
            "response_time_s",
            "deadline_met",
            (pl.col("curtailed_wh") / 1e6).alias("curtailed_mwh"),
        )
        .cast(pl.Schema(schema))
    )


def hourly_chart_frame(period: Period, rows: pl.DataFrame) -> pl.DataFrame:
    """Every hour of the period (null where no interval has data): energy by use, surplus,
    sold-back and bought MWh, net USD, as floats for drawing only."""
    surplus = pl.col("forward_mwh") - pl.col("ai_mwh") - pl.col("overhead_mwh")
    got = (
        rows.with_columns(
            (pl.col("interval_start_s") // 3600 * 3600).alias("hour_s"),
            surplus.alias("surplus_mwh"),
        )
        .group_by("hour_s")
        .agg(
            *(
                pl.col(c).sum().cast(pl.Float64)
                for c in [
                    "ai_mwh",
                    "mining_mwh",
                    "overhead_mwh",
                    "surplus_mwh",
                    "sell_back_mwh",
                    "purchase_mwh",
                    "net_usd",
                ]
            )
        )
    )
    grid = period.hours().select(pl.col("hour_start_s").alias("hour_s"))
    return grid.join(got, on="hour_s", how="left").sort("hour_s")
