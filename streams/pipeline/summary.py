"""End of `spillway run`: the day's settlement and carbon reports, and a terminal summary."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from streams.marts.publish import (
    HELD_NOTE,
    PROVISIONAL_NOTE,
    VIEWS_FILE,
    load_manifest,
    provisional_in,
    status_notes,
)
from streams.marts.tables import REVISIONS
from streams.pipeline.day import DayResult, Say
from streams.pipeline.plan import DayPlan
from streams.procstats import proc_stats
from streams.reports.month_close import close_carbon, close_settlement
from transforms.reports.errors import ReportError
from transforms.reports.period import Period


@dataclass
class Closed:
    settlement: Any = None
    carbon: Any = None
    problems: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    """Partitions the publication's gate holds back in the run's day, with why."""
    provisional: tuple[str, ...] = ()
    """Rows of the run's day published provisional, with why (the first ``MAX_NOTES``)."""
    provisional_rows: int = 0
    restated_seconds: int = 0
    """Seconds of site power restated by late readings (``site_power`` flag ``restated``)."""
    revised_intervals: int = 0
    """Published intervals whose energy a later publication revised (``mart_revisions``)."""


def restatements_in(marts: Path, site_id: str, start_s: float, end_s: float) -> tuple[int, int]:
    """(restated seconds, revised intervals) of a site in ``[start_s, end_s)``, published."""
    views = marts / VIEWS_FILE
    if not views.exists():
        return 0, 0
    con = duckdb.connect(str(views), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        seconds = intervals = 0
        if "site_power" in names:
            row = con.execute(
                "SELECT count(*) FROM site_power WHERE site_id = ? AND ts_s >= ? AND ts_s < ? "
                "AND list_contains(flags, 'restated')",
                [site_id, start_s, end_s],
            ).fetchone()
            seconds = int(row[0]) if row else 0
        if REVISIONS.name in names:
            row = con.execute(
                f"SELECT count(DISTINCT key_start_s) FROM {REVISIONS.name} WHERE "
                "mart = 'interval_energy' AND site_id = ? AND key_start_s >= ? AND key_start_s < ?",
                [site_id, start_s, end_s],
            ).fetchone()
            intervals = int(row[0]) if row else 0
        return seconds, intervals
    finally:
        con.close()


def close_day(result: DayResult, plan: DayPlan, say: Say) -> Closed:
    """Settlement and carbon reports for the run's day, from the published marts."""
    from streams.reports.quiet import quiet
    from transforms.gates import run_gate

    site = result.site_file.site
    period = Period(plan.day.isoformat(), plan.day, plan.day + dt.timedelta(days=1), site.timezone)
    marts, out = result.home / "marts", result.home / "reports"
    problems: list[str] = []
    closed = Closed()
    try:
        closed.settlement = close_settlement(
            marts, period, out, gate=quiet(run_gate), site=site, progress=say
        )
    except ReportError as exc:
        problems.append(f"settlement report: {exc}")
    try:
        closed.carbon = close_carbon(
            marts, period, out, gate=quiet(run_gate), site_id=site.site_id, progress=say
        )
    except ReportError as exc:
        problems.append(f"carbon report: {exc}")
    closed.problems = tuple(problems)
    notes = status_notes(load_manifest(marts), period.start_s, period.end_s, site.site_id)
    closed.held = tuple(n for n in notes if n.startswith(HELD_NOTE))
    closed.provisional = tuple(n for n in notes if n.startswith(PROVISIONAL_NOTE))
    closed.provisional_rows = len(
        provisional_in(load_manifest(marts), period.start_s, period.end_s, site.site_id)
    )
    closed.restated_seconds, closed.revised_intervals = restatements_in(
        marts, site.site_id, period.start_s, period.end_s
    )
    return closed


def _row(frame: Any) -> dict[str, Any]:
    return dict(frame.row(0, named=True)) if frame is not None and frame.height else {}


def print_summary(result: DayResult, plan: DayPlan, closed: Closed) -> None:
    console = Console()
    site = result.site_file.site
    table = Table(
        title=f"Spillway run: {site.name} (scale {plan.scale:g}), {plan.day} "
        f"{site.settlement_point}",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    sim = result.sim
    if sim is not None:
        table.add_row("readings simulated", f"{sim.readings:,}")
        table.add_row("miner commands obeyed", f"{sim.commands:,}")
        if sim.delayed:
            table.add_row("frames a collector outage sent late", f"{sim.delayed:,}")
    s = _row(closed.settlement.report.summary if closed.settlement else None)
    for key, label in [
        ("intervals_settled", "15-min intervals settled"),
        ("poi_mwh", "energy at the revenue meter, MWh"),
        ("ai_mwh", "AI energy, MWh"),
        ("mining_mwh", "mining energy, MWh"),
        ("overhead_mwh", "facility overhead, MWh"),
        ("sell_back_mwh", "surplus sold back, MWh"),
        ("purchase_mwh", "bought above contract, MWh"),
        ("forward_usd", "forward energy, $"),
        ("rt_sell_back_usd", "RT sell-back credits, $"),
        ("rt_purchase_usd", "RT purchases, $"),
        ("mining_revenue_usd", "mining revenue, $"),
        ("net_usd", "net, $"),
    ]:
        if key in s:
            table.add_row(label, str(s[key]))
        if key == "intervals_settled":
            # Say why intervals are not settled when the data was there (see below the table).
            table.add_row("partitions held back by a quality gate", str(len(closed.held)))
            table.add_row("rows published provisional", str(closed.provisional_rows))
            table.add_row(
                "seconds restated by late readings (intervals revised)",
                f"{closed.restated_seconds:,} ({closed.revised_intervals:,})",
            )
    if closed.settlement is not None:
        curt = closed.settlement.report.curtailments
        table.add_row("curtailment events", str(curt.height))
        if curt.height:
            reasons = sorted({r for rs in curt["reasons"].to_list() for r in str(rs).split(",")})
            table.add_row("curtailment reasons", ", ".join(r.strip() for r in reasons))
    c = _row(closed.carbon.report.summary if closed.carbon else None)
    for key, label in [
        ("location_g", "location-based CO2, g"),
        ("market_g", "market-based CO2, g"),
        ("ai_location_g", "AI share, g"),
        ("mining_location_g", "mining share, g"),
    ]:
        if key in c:
            table.add_row(label, f"{c[key]:,}")
    table.add_row("wall time, s", f"{result.wall_s:,.0f}")
    peak = max(
        [proc_stats(os.getpid()).peak_rss_mb] + [ch.peak_rss_mb for ch in result.children.values()]
    )
    table.add_row("peak RSS of any process, MB", f"{peak:,.0f}")
    console.print(table)
    for name, done in (("settlement", closed.settlement), ("carbon", closed.carbon)):
        if done is not None:
            console.print(f"{name} report: {done.files.html}")
    for note in (*closed.held, *closed.provisional):
        console.print(note, style="yellow", markup=False, highlight=False)
    for problem in closed.problems:
        console.print(f"[red]{problem}[/red]")
    console.print(f"marts: {result.home / 'marts'}  (spillway sql runs on views.duckdb there)")
