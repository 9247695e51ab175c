"""``spillway agents``: run a worker of the real-time agents (both stages in one process).

Start more processes with the same settings to share the partitions (one consumer group).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.commands import Subparsers, add_parser, say
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "agents", "run the real-time agents (power, surplus, curtailment)")
    parser.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="FILE|ID",
        help="site TOML file to publish to site.config.v1 at start, or a site id that must "
        "already be there (repeatable; default: whatever site.config.v1 holds)",
    )
    parser.add_argument("--lateness", type=int, default=2, help="seconds a second stays open")
    parser.add_argument(
        "--idle-close",
        type=float,
        default=None,
        metavar="S",
        help="also close seconds S s behind wall clock (live data only)",
    )
    parser.add_argument(
        "--tick",
        choices=("wall", "event", "off"),
        default="wall",
        help="controller ticks: wall clock (live), event time (replay), or none",
    )
    parser.add_argument(
        "--hashprice", type=float, default=None, help="USD/PH/day; overrides site policies"
    )
    parser.add_argument(
        "--store", default="rocksdb://", help="faust table store (rocksdb:// or memory://)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="RocksDB folder (default: a temp folder)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics (default: off)",
    )
    parser.add_argument(
        "--max-open",
        type=int,
        default=300,
        metavar="S",
        help="seconds of event time a lagging partition may hold the others open (300); "
        "raise it for accelerated replays",
    )
    parser.add_argument(
        "--restate-memory",
        type=int,
        default=600,
        metavar="S",
        help="seconds of event time behind the newest closed second that late readings still "
        "restate (600; kept in memory); raise it for accelerated replays",
    )
    parser.add_argument(
        "--wait-lateness",
        action="store_true",
        help="close a second only after its lateness, even when every source has reported "
        "(default: close it as soon as it is complete)",
    )
    parser.add_argument("--loglevel", default="warn", choices=("crit", "error", "warn", "info"))
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.agents import AgentOptions, run_worker
    from streams.agents.sites import resolve_site_arg

    settings = get_settings()
    configs = [resolve_site_arg(s) for s in args.site]
    files = [c for c in configs if not isinstance(c, str)]
    ids = [c for c in configs if isinstance(c, str)]
    if len(files) > 1:
        raise ValueError("agents: give at most one --site FILE per worker")
    options = AgentOptions(
        site=files[0] if files else None,
        required_sites=tuple(ids),
        lateness_s=args.lateness,
        idle_close_s=args.idle_close,
        tick=args.tick,
        hashprice_usd_per_ph_day=args.hashprice,
        store=args.store,
        data_dir=args.data_dir,
        metrics_port=args.metrics_port,
        max_open_s=args.max_open,
        restate_memory_s=args.restate_memory,
        close_complete=not args.wait_lateness,
    )
    ns = settings.topic_namespace or "(none)"
    say(f"agents: namespace {ns} on {settings.kafka_bootstrap_servers}")
    run_worker(settings, options, loglevel=args.loglevel)
    return 0
