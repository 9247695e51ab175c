"""``spillway simulate``: run the closed-loop 1 Hz site simulator into Kafka."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import msgspec

from infra.provision import provision
from streams.commands import Subparsers, add_parser, say
from streams.settings import get_settings
from streams.sim.encode import ENCODINGS
from streams.sim.faults import FaultConfig
from streams.sim.runner import run_simulator
from streams.site_file import load_site_file


def register(sub: Subparsers) -> None:
    p = add_parser(sub, "simulate", "simulate a site's telemetry at 1 Hz, reacting to commands")
    p.add_argument("--site", required=True, help="site TOML file (infra/sites/*.toml)")
    p.add_argument("--seconds", type=int, default=60, help="simulated seconds (default 60)")
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="1 = real time, N = N x faster, 'max' = as fast as possible (default 1)",
    )
    p.add_argument(
        "--start",
        type=_start,
        default=None,
        help="simulated start, UTC: 2026-07-01T00:00:00Z or epoch seconds (default now)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the site file's sim seed")
    p.add_argument("--provision", action="store_true", help="provision the topics first")
    p.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default="json",
        help="frame encoding (json); packed: binary columns (schemas/packed.py)",
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    f = p.add_argument_group("faults")
    f.add_argument("--drop", type=float, default=0.0, help="share of frames lost")
    f.add_argument("--duplicate", type=float, default=0.0, help="share of frames sent twice")
    f.add_argument("--reorder", type=float, default=0.0, help="share of frames sent late")
    f.add_argument("--skew-share", type=float, default=0.0, help="share of skewed clocks")
    f.add_argument("--skew-s", type=float, default=5.0, help="clock skew, s (default 5)")
    f.add_argument(
        "--resets-per-hour", type=float, default=0.0, help="energy counter resets per source/h"
    )
    p.set_defaults(func=_simulate)


def _speed(text: str) -> float | None:
    if text.lower() in ("max", "fast", "0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed {text!r}: expected a number or 'max'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--speed {text!r}: expected > 0 or 'max'")
    return value


def _start(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--start {text!r}: expected ISO date-time (UTC) or epoch seconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _simulate(args: argparse.Namespace) -> int:
    settings = get_settings()
    site_file = load_site_file(args.site)
    sim = site_file.sim
    if args.seed is not None:
        sim = msgspec.structs.replace(sim, seed=args.seed)
    faults = FaultConfig(
        drop_share=args.drop,
        duplicate_share=args.duplicate,
        reorder_share=args.reorder,
        skew_share=args.skew_share,
        skew_s=args.skew_s,
        resets_per_hour=args.resets_per_hour,
    )
    faults.check()
    if args.provision:
        provision(settings)
    ns = settings.topic_namespace or "(none)"
    speed = "max" if args.speed is None else f"{args.speed:g}x"
    say(f"simulating {site_file.site.site_id} for {args.seconds} s at {speed}, namespace {ns}")
    stats = run_simulator(
        settings,
        site_file.site,
        sim=sim,
        start_s=args.start,
        seconds=args.seconds,
        speed=args.speed,
        faults=faults,
        encoding=args.encoding,
    )
    figures = stats.summary()
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"{figures['sim_seconds']} simulated s in {figures['wall_s']} s: "
            f"{figures['readings_per_s']:,} readings/s, {figures['messages_per_s']:,} messages/s, "
            f"{figures['mb_per_s']} MB/s; CPU {figures['cpu_s']} s "
            f"({figures['cpu_per_wall']} cores); commands {figures['commands']}"
        )
    return 0
