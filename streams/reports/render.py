"""The two report pages, from the report tables (pure: tables in, HTML text out)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl

from streams.marts.publish import HELD_NOTE, PROVISIONAL_NOTE
from streams.reports import html as h
from streams.reports import svg
from transforms.columns import COLUMNS
from transforms.reports.carbon_report import CarbonReport
from transforms.reports.common import Source
from transforms.reports.period import Period
from transforms.reports.settlement_report import MONEY, SettlementReport, hourly_chart_frame

COMPONENT_LABELS = {
    "forward_usd": "forward",
    "day_ahead_usd": "day-ahead",
    "rt_sell_back_usd": "RT sell-back",
    "rt_purchase_usd": "RT purchase",
    "basis_usd": "hub-to-zone basis",
    "mining_revenue_usd": "mining revenue",
    "dr_credit_usd": "DR credits",
    "ancillary_credit_usd": "ancillary capacity",
    "ancillary_failure_usd": "AS failure to provide",
    "four_cp_usd": "4CP accrual",
    "net_usd": "net",
}


def x_ticks(period: Period) -> list[tuple[float, str]]:
    """Local-midnight ticks labelled in local time: about 12 days' worth in a month, the
    first of each month in longer periods."""
    days = period.days
    zone = ZoneInfo(period.tz)
    if len(days) > 62:
        days = [d for d in days if d.day == 1]
    else:
        days = days[:: max(1, math.ceil(len(days) / 12))]
    out = []
    for d in days:
        t = datetime(d.year, d.month, d.day, tzinfo=zone)
        out.append((t.timestamp(), t.strftime("%b %d")))
    return out


def _utc(s: float) -> str:
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _header(period: Period, site: str, generated_at_s: float, status: str) -> str:
    return "\n".join(
        [
            h.para(
                f"Site {site}; period {period.label} in market local time ({period.tz}): "
                f"{period.local_iso(period.start_s)} to {period.local_iso(period.end_s)} "
                "(end exclusive). Times below are local unless marked UTC."
            ),
            h.para(f"Generated {_utc(generated_at_s)}. {status}"),
        ]
    )


def _status(gates_ok: bool, missing: int, unit: str, notes: Sequence[str] = ()) -> str:
    """The report's one-line status. ``notes`` (the publication's held / provisional notes,
    ``streams.marts.publish.status_notes``) keep it from calling held data missing."""
    held = sum(n.startswith(HELD_NOTE) for n in notes)
    provisional = any(n.startswith(PROVISIONAL_NOTE) for n in notes)
    g = "all quality gates passed" if gates_ok else "QUALITY GATE FAILURES (see below)"
    if held:
        g += f"; {held} partition(s) held back by the publication's quality gate (see notes)"
    if missing == 0:
        m = "complete"
    elif held:
        m = f"{missing} {unit} without published data: held back or not received (see notes)"
    else:
        m = f"{missing} {unit} without data"
    if provisional:
        m += "; some rows published provisional (see notes)"
    return f"Status: {g}; {m}."


def _sources(sources: Sequence[Source], outputs: Sequence[str], tables: Sequence[str]) -> str:
    rows = pl.DataFrame(
        [
            {"input": s.table, "rows": s.rows, "files": len(s.files), "note": s.note}
            for s in sources
        ],
        schema={"input": pl.String, "rows": pl.Int64, "files": pl.Int64, "note": pl.String},
    )
    parts = [h.frame_table(rows, left=["input", "note"])]
    for s in sources:
        parts.append(h.details(f"{s.table}: {len(s.files)} file(s)", h.list_html(s.files)))
    parts.append(h.para("Files written with this page (figures above are their sums):"))
    parts.append(h.list_html(outputs))
    for t in tables:
        docs = pl.DataFrame(
            [{"column": c, "meaning (unit)": d} for c, d in COLUMNS.get(t, {}).items()]
        )
        if docs.height:
            parts.append(
                h.details(f"columns of {t}", h.frame_table(docs, left=["column", "meaning (unit)"]))
            )
    return "\n".join(parts)


def _sum_row(summary: pl.DataFrame) -> dict[str, object]:
    return summary.row(0, named=True)


def _dec(row: dict[str, object], key: str) -> Decimal:
    v = row[key]
    if not isinstance(v, Decimal):
        raise TypeError(f"summary {key!r} is {type(v).__name__}, expected Decimal")
    return v


def _int(row: dict[str, object], key: str) -> int:
    v = row[key]
    if not isinstance(v, int):
        raise TypeError(f"summary {key!r} is {type(v).__name__}, expected int")
    return v


# ---------------------------------------------------------------- settlement


def settlement_html(r: SettlementReport, outputs: Sequence[str]) -> str:
    s = _sum_row(r.summary)
    gates_ok = all(g.success for g in r.gates)
    figures: list[tuple[str, str, object, str]] = [
        ("intervals_expected", "intervals in the period", s["intervals_expected"], "count"),
        ("intervals_settled", "intervals settled", s["intervals_settled"], "count"),
        ("intervals_missing", "intervals without data", s["intervals_missing"], "count"),
        (
            "intervals_not_reconciled",
            "intervals not reconciled to the revenue meter",
            s["intervals_not_reconciled"],
            "count",
        ),
        ("ai_mwh", "AI energy", s["ai_mwh"], "MWh"),
        ("mining_mwh", "mining energy", s["mining_mwh"], "MWh"),
        ("overhead_mwh", "facility overhead energy", s["overhead_mwh"], "MWh"),
        ("poi_mwh", "revenue meter (POI) energy", s["poi_mwh"], "MWh"),
        ("forward_mwh", "forward (contract) energy", s["forward_mwh"], "MWh"),
        ("day_ahead_mwh", "day-ahead energy (net bought)", s["day_ahead_mwh"], "MWh"),
        ("position_mwh", "positions (forward + day-ahead)", s["position_mwh"], "MWh"),
        ("sell_back_mwh", "sold back at RT", s["sell_back_mwh"], "MWh"),
        ("purchase_mwh", "bought at RT", s["purchase_mwh"], "MWh"),
        ("hashrate_ph_days", "mining work", s["hashrate_ph_days"], "PH-days"),
        *((c, COMPONENT_LABELS[c], s[c], "USD") for c in MONEY),
    ]
    hourly = hourly_chart_frame(r.period, r.intervals)
    xr = (float(r.period.start_s), float(r.period.end_s))
    x = [float(v) for v in hourly["hour_s"]]
    ticks = x_ticks(r.period)
    bands = [
        (
            float(e["issued_at_s"]),
            float(e["ended_at_s"] or r.period.end_s),
            f"curtailment {e['event_id']} ({e['reasons']})",
        )
        for e in r.curtailments.iter_rows(named=True)
    ]
    energy_chart = svg.stacked_area_chart(
        x,
        {
            "AI": _nonneg(hourly["ai_mwh"]),
            "mining": _nonneg(hourly["mining_mwh"]),
            "overhead": _nonneg(hourly["overhead_mwh"]),
        },
        title="Energy by use, per hour",
        y_label="MWh",
        x_ticks=ticks,
        x_range=xr,
    )
    surplus_chart = svg.line_chart(
        x,
        {
            "surplus": hourly["surplus_mwh"].to_list(),
            "mining (absorbed)": hourly["mining_mwh"].to_list(),
            "sold back at RT": hourly["sell_back_mwh"].to_list(),
            "bought at RT": hourly["purchase_mwh"].to_list(),
        },
        title="Surplus and curtailment, per hour (shaded: curtailment events)",
        y_label="MWh",
        x_ticks=ticks,
        bands=bands,
        x_range=xr,
    )
    money_chart = svg.bar_chart(
        [COMPONENT_LABELS[c] for c in MONEY],
        [float(_dec(s, c)) for c in MONEY],
        value_labels=[h.money(_dec(s, c)) for c in MONEY],
        title="Money by component (to the site: + received, - paid)",
        y_label="USD",
    )
    sections = [
        _header(
            r.period,
            r.site_id,
            r.generated_at_s,
            _status(gates_ok, _int(s, "intervals_missing"), "interval(s)", r.notes),
        ),
        *(h.para(n, "note") for n in r.notes),
        h.section("Summary", h.figure_table(figures), anchor="summary"),
        h.section("Charts", energy_chart, surplus_chart, money_chart, anchor="charts"),
        h.section("By market day", h.frame_table(r.daily, left=["market_date"]), anchor="daily"),
        h.section(
            "Curtailment events",
            h.frame_table(
                r.curtailments, left=["event_id", "reasons", "issued_local", "ended_local"]
            )
            if r.curtailments.height
            else h.para("No curtailment event in the period."),
            h.para(f"Surplus events in the period: {r.surplus_event_count}."),
            anchor="curtailments",
        ),
        *([] if r.transmission is None else [_transmission(r.transmission)]),
        h.section("Quality gates (Great Expectations)", h.gates_html(r.gates), anchor="gates"),
        h.section(
            "Sources",
            _sources(r.sources, outputs, ["settlement", "interval_energy"]),
            anchor="sources",
        ),
    ]
    return h.page(f"Settlement report: {r.site_id}, {r.period.label}", sections)


def _transmission(t: pl.DataFrame) -> str:
    basis = h.para(
        "Transmission cost follows the site's average kW in ERCOT's monthly system peak "
        "intervals: June-September for 4CP, every month for 12CP (16 TAC §25.192(b)(1)). "
        "Avoided = (baseline tag - metered tag) x rate, the baseline adding the mining "
        "energy curtailed in each peak interval; a month shows its peaks' share of the year."
    )
    body = (
        h.frame_table(t, left=["year", "method"])
        if t.height
        else h.para("No peak interval of the method in the period.")
    )
    return h.section("Avoided transmission cost (4CP)", basis, body, anchor="transmission")


def _nonneg(col: pl.Series) -> list[float | None]:
    """Stacked areas need non-negative values: overhead can dip below zero when the POI
    meter reads under the device sums; those hours are drawn at zero (the tables keep them).
    Missing hours stay None (a gap)."""
    return [None if v is None else max(float(v), 0.0) for v in col]


# ---------------------------------------------------------------- carbon


def carbon_html(r: CarbonReport, outputs: Sequence[str]) -> str:
    s = _sum_row(r.summary)
    gates_ok = all(g.success for g in r.gates)
    t = Decimal(1_000_000)
    figures: list[tuple[str, str, object, str]] = [
        ("hours_expected", "hours in the period", s["hours_expected"], "count"),
        ("hours_reported", "hours with data", s["hours_reported"], "count"),
        ("hours_missing", "hours without data", s["hours_missing"], "count"),
        ("total_mwh", "site consumption", s["total_mwh"], "MWh"),
        ("ai_mwh", "AI energy", s["ai_mwh"], "MWh"),
        ("mining_mwh", "mining energy", s["mining_mwh"], "MWh"),
        ("overhead_mwh", "overhead energy", s["overhead_mwh"], "MWh"),
        ("location_g", "location-based emissions", s["location_g"], "gCO2eq"),
        (
            "ai_location_g",
            "location-based, AI (incl. overhead share)",
            s["ai_location_g"],
            "gCO2eq",
        ),
        (
            "mining_location_g",
            "location-based, mining (incl. overhead share)",
            s["mining_location_g"],
            "gCO2eq",
        ),
        ("market_g", "market-based emissions", s["market_g"], "gCO2eq"),
        ("ai_market_g", "market-based, AI", s["ai_market_g"], "gCO2eq"),
        ("mining_market_g", "market-based, mining", s["mining_market_g"], "gCO2eq"),
        ("cfe_contracted_mwh", "carbon-free energy contracted", s["cfe_contracted_mwh"], "MWh"),
        ("cfe_matched_mwh", "carbon-free energy matched hourly", s["cfe_matched_mwh"], "MWh"),
        ("cfe_share", "24/7 CFE share (matched / consumption)", s["cfe_share"], "fraction"),
        (
            "location_g_per_kwh",
            "location-based intensity (energy-weighted)",
            s["location_g_per_kwh"],
            "gCO2eq/kWh",
        ),
        ("market_g_per_kwh", "market-based intensity", s["market_g_per_kwh"], "gCO2eq/kWh"),
        ("curtailed_mwh", "mining energy curtailed", s["curtailed_mwh"], "MWh"),
        ("avoided_g", "avoided emissions of curtailment (marginal)", s["avoided_g"], "gCO2eq"),
    ]
    tonnes = h.para(
        "In tonnes: location-based "
        f"{_dec(s, 'location_g') / t:,.3f} t, market-based "
        f"{_dec(s, 'market_g') / t:,.3f} t CO2eq."
    )
    grid = r.period.hours().select("hour_start_s").join(r.hours, on="hour_start_s", how="left")
    x = [float(v) for v in grid["hour_start_s"]]
    xr = (float(r.period.start_s), float(r.period.end_s))
    ticks = x_ticks(r.period)

    def kg(col: str) -> list[float | None]:
        return [None if v is None else float(v) / 1000.0 for v in grid[col]]

    loc_mkt = svg.line_chart(
        x,
        {"location-based": kg("location_g"), "market-based": kg("market_g")},
        title="Hourly emissions: location- vs market-based",
        y_label="kgCO2eq",
        x_ticks=ticks,
        x_range=xr,
    )
    split = svg.stacked_area_chart(
        x,
        {"AI (location)": kg("ai_location_g"), "mining (location)": kg("mining_location_g")},
        title="Hourly location-based emissions: AI vs mining",
        y_label="kgCO2eq",
        x_ticks=ticks,
        x_range=xr,
    )
    split_mkt = svg.line_chart(
        x,
        {"AI (market)": kg("ai_market_g"), "mining (market)": kg("mining_market_g")},
        title="Hourly market-based emissions: AI vs mining",
        y_label="kgCO2eq",
        x_ticks=ticks,
        x_range=xr,
    )
    intensity = svg.line_chart(
        x,
        {
            "grid average": grid["intensity_g_per_kwh"].to_list(),
            "marginal": grid["marginal_g_per_kwh"].to_list(),
        },
        title="Grid carbon intensity",
        y_label="gCO2eq/kWh",
        x_ticks=ticks,
        x_range=xr,
    )
    sections = [
        _header(
            r.period,
            r.site_id,
            r.generated_at_s,
            _status(gates_ok, _int(s, "hours_missing"), "hour(s)", r.notes),
        ),
        *(h.para(n, "note") for n in r.notes),
        h.section("Summary", h.figure_table(figures), tonnes, anchor="summary"),
        h.section("Charts", loc_mkt, split, split_mkt, intensity, anchor="charts"),
        h.section("By market day", h.frame_table(r.daily, left=["market_date"]), anchor="daily"),
        h.section("Quality gates (Great Expectations)", h.gates_html(r.gates), anchor="gates"),
        h.section("Sources", _sources(r.sources, outputs, ["carbon_hourly"]), anchor="sources"),
    ]
    return h.page(f"Carbon report: {r.site_id}, {r.period.label}", sections)
