"""``spillway sql "SELECT ..."``: read-only queries over the published marts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streams.commands import Subparsers, add_parser
from streams.marts.query import FORMATS, QueryRefused, render, run_query
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "sql", "run a read-only SQL query on the published marts")
    parser.add_argument("query", help='one SELECT statement, e.g. "SELECT * FROM site_power"')
    parser.add_argument("--format", choices=FORMATS, default="table", help="output (table)")
    parser.add_argument(
        "--marts", type=Path, default=None, help="published marts folder (default <home>/marts)"
    )
    parser.set_defaults(func=_sql)


def _sql(args: argparse.Namespace) -> int:
    from streams.pipeline.last_run import reading_settings

    marts = args.marts or reading_settings(get_settings()).marts_dir
    try:
        frame = run_query(marts, args.query)
    except QueryRefused as exc:
        print(f"spillway sql: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(frame, args.format).rstrip("\n") + "\n")
    return 0
