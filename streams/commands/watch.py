"""``spillway watch``: a live terminal view of the output topics (rich Live)."""

from __future__ import annotations

import argparse
import time

from streams.commands import Subparsers, add_parser


def register(sub: Subparsers) -> None:
    parser = add_parser(
        sub,
        "watch",
        "live terminal view: power, surplus, curtailments, alerts, prices, throughput and lag",
    )
    add_view_options(parser)
    parser.add_argument(
        "--refresh", type=float, default=4.0, help="screen refreshes per second (4)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    parser.set_defaults(func=_watch)


def add_view_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", default=None, help="site id to follow (default: first seen)")
    parser.add_argument(
        "--lookback", type=float, default=900.0, help="seconds of history to read at start (900)"
    )
    parser.add_argument(
        "--from-beginning", action="store_true", help="read every topic from its beginning"
    )
    parser.add_argument(
        "--hashprice",
        type=float,
        default=None,
        help="USD/PH/day for breakevens (default: the site policy's)",
    )


def _watch(args: argparse.Namespace) -> int:
    import threading

    from rich.live import Live

    from streams.observe.feed import Feed
    from streams.observe.state import ObserveState
    from streams.observe.terminal import render
    from streams.settings import get_settings

    state = ObserveState(site_id=args.site, hashprice_override=args.hashprice)
    lock = threading.Lock()
    from streams.pipeline.last_run import reading_settings

    feed = Feed(
        reading_settings(get_settings()),
        state,
        lookback_s=args.lookback,
        from_beginning=args.from_beginning,
        lock=lock,
    )
    period = 1.0 / max(args.refresh, 0.1)
    stop_at = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        with Live(render(state), auto_refresh=False, screen=False) as live:
            next_draw = 0.0
            while stop_at is None or time.monotonic() < stop_at:
                feed.poll(timeout_s=period / 2)
                if time.monotonic() >= next_draw:
                    with lock:
                        live.update(render(state), refresh=True)
                    next_draw = time.monotonic() + period
    finally:
        feed.close()
    return 0
