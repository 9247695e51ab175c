"""``spillway bench``: throughput, latency and memory against the limit and a naive baseline."""

from __future__ import annotations

import argparse
import json

from streams.commands import Subparsers, add_parser, say
from streams.settings import get_settings
from streams.sim.encode import ENCODINGS


def register(sub: Subparsers) -> None:
    parser = add_parser(
        sub,
        "bench",
        "pre-produce the reference site's telemetry, then measure the limit (bare consumer), "
        "a naive per-event agent, the faust floor (a do-nothing agent), Spillway's agents and "
        "the mart sink on it",
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
        help="also run the agents at 1%%, 10%% and 100%% of the site (--scaling-at) and print "
        "a scaling row",
    )
    parser.add_argument(
        "--scaling-at",
        default="0.01,0.1,1",
        metavar="F,F,...",
        help="site fractions of the scaling row (0.01,0.1,1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="agent worker processes in the spillway and scaling rows (1); one per core is "
        "how a site is run",
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="run live for MINUTES and report the agents' RSS over time",
    )
    parser.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default="json",
        help="telemetry frame encoding (json); packed: binary columns (schemas/packed.py)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.soak is not None:
        from streams.bench.soak import soak

        if args.soak <= 0:
            raise ValueError(f"bench: --soak takes minutes > 0, got {args.soak}")
        result = soak(settings, args.soak, args.scale, say, encoding=args.encoding)
    else:
        from streams.bench.harness import run_bench, scaling_rows

        if not 1 <= args.workers <= 64:
            raise ValueError(f"bench: --workers takes 1 to 64, got {args.workers}")
        result = run_bench(
            settings,
            scale=args.scale,
            seconds=args.seconds,
            naive_max_s=args.naive_max_s,
            workers=args.workers,
            say=say,
            encoding=args.encoding,
        )
        if args.scaling:
            scales = _fractions(args.scaling_at)
            result["scaling"] = scaling_rows(
                scales, args.seconds, say, workers=args.workers, encoding=args.encoding
            )
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        _print(result)
    return 0


def _fractions(text: str) -> list[float]:
    try:
        scales = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(
            f"bench: --scaling-at takes fractions like 0.01,0.1,1; got {text!r}"
        ) from None
    if not scales or any(not 0 < x <= 10 for x in scales):
        raise ValueError(f"bench: --scaling-at fractions must be in (0, 10]; got {text!r}")
    return scales


def _print(result: dict[str, object]) -> None:
    for key, value in result.items():
        if isinstance(value, list):
            print(key)
            for row in value:
                print("  " + "  ".join(f"{k}={v}" for k, v in dict(row).items()))
        elif isinstance(value, int | float):
            print(f"{key:32} {value:>14,}")
        else:
            print(f"{key:32} {value}")
