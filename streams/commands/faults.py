"""``spillway faults``: the long fault-injection run (kills, broker restarts, stalls) on a
private broker, compared with the offline truth; prints the survival table."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from streams.commands import Subparsers, add_parser, say
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(
        sub,
        "faults",
        "kill the agents and the sink, restart the broker, stall a worker; "
        "check the marts against the offline truth",
    )
    parser.add_argument(
        "--kills", type=int, default=20, help="SIGKILLs in all, split between agents and sink (20)"
    )
    parser.add_argument("--broker-restarts", type=int, default=2, help="broker restarts (2)")
    parser.add_argument(
        "--stalls",
        type=int,
        default=2,
        help="SIGSTOPs of the agents beyond their session timeout (2)",
    )
    parser.add_argument(
        "--seconds", type=int, default=900, help="simulated seconds of the small site (900)"
    )
    parser.add_argument(
        "--speed", type=float, default=2.0, help="simulated seconds produced per wall second (2)"
    )
    parser.add_argument("--seed", type=int, default=1, help="fault schedule seed (1)")
    parser.add_argument("--lateness", type=int, default=5, help="agents' allowed lateness, s (5)")
    parser.add_argument(
        "--port",
        type=int,
        default=19192,
        help="port of the private broker (19192; never the shared one)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="private folder (default: a temp folder, removed unless --keep)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the private folder")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.faults.harness import RunConfig, run_faults

    base = get_settings()
    if args.port in (base.broker_port, base.broker_port + 1):
        raise ValueError(f"faults: --port {args.port} is the shared broker's; pick another")
    home = args.home or Path(tempfile.mkdtemp(prefix="spillway-faults-"))
    cfg = RunConfig(
        home=home,
        seconds=args.seconds,
        speed=args.speed,
        kills_agents=(args.kills + 1) // 2,
        kills_sink=args.kills // 2,
        broker_restarts=args.broker_restarts,
        stalls=args.stalls,
        seed=args.seed,
        lateness_s=args.lateness,
        broker_port=args.port,
        libs_from=base.home,
    )
    try:
        report, _ = run_faults(base, cfg, say)
    finally:
        if args.home is None and not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print(report.table())
    return 0 if report.ok else 1
