"""``spillway report settlement|carbon --month YYYY-MM``: month-close reports (CSV + one
self-contained HTML page) from the published marts.

Exit status: 0 written and every quality gate passed; 3 written but a gate failed (the page
shows which expectation); 2 nothing written (no data for the month, bad arguments)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streams.commands import Subparsers, add_parser, say
from streams.reports.month_close import Closed, close_carbon, close_settlement
from streams.reports.quiet import quiet
from streams.settings import get_settings
from transforms.gates import run_gate  # GX itself is imported only when a gate runs
from transforms.reports.carbon_report import CarbonReport
from transforms.reports.errors import ReportError
from transforms.reports.period import Period
from transforms.reports.settlement_report import SettlementReport

_EXIT = "exit status: 0 written, gates passed; 3 written, a quality gate failed; 2 nothing written"


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "report", "month-close reports (settlement, carbon) from the marts")
    parser.epilog = _EXIT
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    settle = add_parser(
        kinds, "settlement", "per-interval settlement, daily and monthly totals, charts"
    )
    _common(settle)
    settle.add_argument(
        "--site-file",
        type=Path,
        default=None,
        help="site TOML (infra/sites/*.toml): contract, settlement point and "
        "hashprice, used when no settlement mart is published",
    )
    settle.set_defaults(func=_settlement)
    carbon = add_parser(
        kinds, "carbon", "hourly carbon (location- and market-based, AI vs mining), totals"
    )
    _common(carbon)
    carbon.set_defaults(func=_carbon)


def _common(p: argparse.ArgumentParser) -> None:
    p.epilog = _EXIT
    p.add_argument(
        "--month",
        required=True,
        help="local calendar month YYYY-MM (America/Chicago days, DST days included)",
    )
    p.add_argument("--site", default=None, help="site id (required when several sites publish)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default <home>/reports)")
    p.add_argument(
        "--marts", type=Path, default=None, help="published marts folder (default <home>/marts)"
    )


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from streams.pipeline.last_run import reading_settings

    settings = reading_settings(get_settings())
    return (args.marts or settings.marts_dir), (args.out or settings.home / "reports")


def _print(closed: Closed[SettlementReport] | Closed[CarbonReport]) -> int:
    for path in [closed.files.html, *closed.files.csvs.values()]:
        print(path)
    failed = [g.mart for g in closed.report.gates if not g.success]
    if failed:
        say(f"quality gate FAILED for {', '.join(failed)}: see the report's gates section")
        return 3
    return 0


def _settlement(args: argparse.Namespace) -> int:
    from streams.site_file import SiteFileError, load_site

    marts, out = _paths(args)
    try:
        site = load_site(args.site_file) if args.site_file else None
        closed = close_settlement(
            marts,
            Period.month(args.month),
            out,
            gate=quiet(run_gate),
            site_id=args.site,
            site=site,
            progress=say,
        )
    except (ReportError, SiteFileError) as exc:
        print(f"spillway report settlement: {exc}", file=sys.stderr)
        return 2
    return _print(closed)


def _carbon(args: argparse.Namespace) -> int:
    marts, out = _paths(args)
    try:
        closed = close_carbon(
            marts,
            Period.month(args.month),
            out,
            gate=quiet(run_gate),
            site_id=args.site,
            progress=say,
        )
    except ReportError as exc:
        print(f"spillway report carbon: {exc}", file=sys.stderr)
        return 2
    return _print(closed)
