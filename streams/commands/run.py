"""``spillway run``: the main job. The reference site through one real ERCOT market day in
closed loop (simulator, agents, mart sink), a live view, then settlement and carbon reports."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import threading
from pathlib import Path

from infra import broker
from streams.commands import Subparsers, add_parser, say
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    from streams.pipeline.plan import GRID_SCENARIO, REFERENCE_SITE

    p = add_parser(sub, "run", "run the whole pipeline on the reference site through one day")
    p.add_argument("--site", type=Path, default=REFERENCE_SITE, help="site TOML file")
    p.add_argument(
        "--grid-scenario",
        type=Path,
        default=GRID_SCENARIO,
        help="replay scenario for the grid side (prices, carbon, events)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=0.001,
        help="fraction of the site simulated (0.001: 45 miners, 29 GPU nodes)",
    )
    p.add_argument("--speed", type=float, default=60.0, help="simulated s per second (60)")
    p.add_argument(
        "--full-day",
        action="store_true",
        help="the whole day (about 26 min; AI spike 11:00, ECRS dispatch 14:00, price spike "
        "21:00) instead of the 19:00-22:00 window that holds all three (about 4 min)",
    )
    p.add_argument("--hours", type=float, default=None, help="hours to run (3; full day 24)")
    p.add_argument(
        "--from-hour",
        type=float,
        default=None,
        help="local hour to start at (19; full day 0)",
    )
    p.add_argument(
        "--day",
        type=dt.date.fromisoformat,
        default=dt.date(2025, 7, 1),
        help="local market day (bundled prices: 2025-07-01..03)",
    )
    p.add_argument(
        "--collector-outage",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="one ASIC collector loses its link for SECONDS at 20:40 local, then sends what "
        "it buffered: late readings that restate their seconds (0: none)",
    )
    p.add_argument("--no-view", action="store_true", help="progress lines instead of live view")
    p.add_argument(
        "--no-broker",
        action="store_true",
        help="never start the local broker; use KAFKA_BOOTSTRAP_SERVERS as it is",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.pipeline.day import run_day
    from streams.pipeline.plan import DayPlan, full_day
    from streams.pipeline.summary import close_day, print_summary
    from streams.pipeline.view import LiveView

    settings = get_settings()
    if not args.no_broker and not broker.answers(settings.kafka_bootstrap_servers):
        broker.start(settings, progress=say)
    plan = DayPlan(
        site_file=args.site,
        scale=args.scale,
        day=args.day,
        speed=args.speed,
        grid_scenario=args.grid_scenario,
        collector_outage_s=args.collector_outage,
    )
    if args.full_day:
        plan = full_day(plan)
    if args.hours is not None:
        plan = dataclasses.replace(plan, hours=args.hours)
    if args.from_hour is not None:
        plan = dataclasses.replace(plan, start_hour=args.from_hour)
    stop = threading.Event()
    view = LiveView(enabled=not args.no_view and sys.stderr.isatty())
    try:
        result = run_day(
            settings, plan, say=view.say, stop=stop, on_step=view.on_step, on_started=view.start
        )
    except KeyboardInterrupt:
        stop.set()
        view.stop()
        say("interrupted: children stopped cleanly; nothing half-written (see the sink log)")
        return 130
    finally:
        view.stop()
    if result.interrupted:
        say("stopped early; reports cover what was processed")
    closed = close_day(result, plan, say)
    print_summary(result, plan, closed)
    return 0
