"""``spillway dashboard``: the local web dashboard (127.0.0.1 only), with /metrics."""

from __future__ import annotations

import argparse
import time

from streams.commands import Subparsers, add_parser, say
from streams.commands.watch import add_view_options


def register(sub: Subparsers) -> None:
    parser = add_parser(
        sub,
        "dashboard",
        "serve the live web dashboard on 127.0.0.1 (charts, curtailments, alerts, marts, /metrics)",
    )
    parser.add_argument("--port", type=int, default=8050, help="port on 127.0.0.1 (8050)")
    add_view_options(parser)
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    parser.add_argument("--json-logs", action="store_true", help="log JSON lines to stderr")
    parser.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    import threading

    from streams.observe.feed import Feed, FeedThread
    from streams.observe.logs import configure_logging
    from streams.observe.state import ObserveState
    from streams.observe.web import DashboardServer, status_of
    from streams.settings import get_settings

    configure_logging(json=args.json_logs)
    from streams.pipeline.last_run import reading_settings

    settings = reading_settings(get_settings())
    state = ObserveState(site_id=args.site, hashprice_override=args.hashprice)
    lock = threading.Lock()
    feed = FeedThread(
        Feed(
            settings, state, lookback_s=args.lookback, from_beginning=args.from_beginning, lock=lock
        )
    )
    server = DashboardServer(settings, state, lock, port=args.port, status=status_of(feed))
    url = server.start()
    feed.start()
    say(f"dashboard at {url} (Ctrl-C to stop); metrics at {url}metrics")
    try:
        stop_at = None if args.seconds is None else time.monotonic() + args.seconds
        while stop_at is None or time.monotonic() < stop_at:
            time.sleep(0.5)
    finally:
        feed.stop()
        server.stop()
    return 0
