"""``spillway bench``: throughput, latency and memory against the limit and a naive baseline."""

from __future__ import annotations

import argparse
import json

from streams.commands import Subparsers, add_parser, say
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(
        sub,
        "bench",
        "pre-produce the reference site's telemetry, then measure the limit (bare consumer), "
        "a naive per-event agent, Spillway's agents and the mart sink on it",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the 400 MW reference site (1.0 = 300,000 readings/s)",
    )
    parser.add_argument("--seconds", type=int, default=60, help="seconds of traffic (60)")
    parser.add_argument(
        "--naive-max-s",
        type=float,
        default=60.0,
        help="stop timing the naive agent after this many seconds (60)",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also run at 1%%, 10%% and 100%% of the site and print a scaling row",
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="run live for MINUTES and report the agents' RSS over time",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from streams.bench.harness import run_bench

    settings = get_settings()
    result = run_bench(
        settings, scale=args.scale, seconds=args.seconds, naive_max_s=args.naive_max_s, say=say
    )
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(
                f"{key:32} {value:>14,}" if isinstance(value, int | float) else f"{key:32} {value}"
            )
    return 0
