"""``spillway replay SCENARIO.toml | FILE...``: recorded telemetry and grid data into Kafka."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from streams.commands import Subparsers, add_parser, say
from streams.replay import files as files_mod
from streams.replay import scenario as scenario_mod
from streams.replay.records import Record, merge
from streams.replay.runner import ReplayStats, send
from streams.settings import Settings, get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "replay", "replay recorded telemetry and grid files into the topics")
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="SCENARIO|FILE",
        help="one scenario .toml (streams/replay/SCENARIOS.md) or recording files",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="N times real time (default 0: as fast as possible)",
    )
    parser.add_argument("--start", help="move the scenario to start at this UTC time (ISO 8601)")
    parser.add_argument("--data-dir", type=Path, help="base folder of the scenario's files")
    parser.add_argument(
        "--site-id", default="replay", help="site id for FILE mode (default replay)"
    )
    parser.add_argument(
        "--point",
        action="append",
        dest="points",
        help="settlement point to keep in FILE mode (repeatable)",
    )
    parser.add_argument(
        "--trace-gpus",
        type=int,
        help="GPUs per sample of an nvidia-smi log without an index column",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    first = Path(args.inputs[0])
    if first.suffix == ".toml":
        if len(args.inputs) > 1:
            raise ValueError("give one scenario file, or recording files, not both")
        sc = scenario_mod.load(first, args.data_dir)
        if args.start:
            sc = sc.with_start(scenario_mod.utc_seconds(args.start, "--start"))
        sources, label = scenario_mod.sources(sc), sc.name
        span: tuple[float, float] | None = (sc.start_s, sc.end_s)
    else:
        if args.start or args.data_dir:
            raise ValueError("--start and --data-dir need a scenario file, not recordings")
        sources = files_mod.file_sources(args.inputs, args.site_id, args.points, args.trace_gpus)
        label, span = "files", None
    say(
        f"replaying {len(sources)} recording(s) into {settings.kafka_bootstrap_servers}"
        + (f" namespace {settings.topic_namespace!r}" if settings.topic_namespace else "")
        + (f" at {args.speed:g}x" if args.speed else " as fast as possible")
    )
    say(
        f"consumers of a replay need SPILLWAY_MAX_AGE_S above the data's age "
        f"(now {settings.max_age_s:.0f} s)"
    )
    stats = _with_progress(settings, merge(dict(sources)), args, label, span)
    print(stats.describe())
    return 0


def _with_progress(
    settings: Settings,
    records: Iterable[Record],
    args: argparse.Namespace,
    label: str,
    span: tuple[float, float] | None,
) -> ReplayStats:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if args.no_progress:
        return send(settings, records, args.speed or None, None, label=label)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sent]:,} sent"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, transient=False) as bar:
        total = (span[1] - span[0]) if span else None
        task = bar.add_task(f"replay {label}", total=total, sent=0)

        def progress(ts_s: float, sent: int) -> None:
            done = (ts_s - span[0]) if span else None
            bar.update(task, completed=done, sent=sent)

        stats = send(settings, records, args.speed or None, progress, label=label)
        if span:
            bar.update(task, completed=span[1] - span[0])
    return stats
