"""``spillway sink [--once] | sink publish | sink docs``: the exactly-once mart sink."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import msgspec

from schemas.events import Alert
from streams.commands import Subparsers, add_parser, say
from streams.io.kafka import TopicProducer
from streams.marts.docs import render_markdown
from streams.marts.publish import publish
from streams.marts.sink import DEFAULT_GROUP, default_group, run_sink, sink_db_path
from streams.marts.store import open_store
from streams.observe.metrics import start_metrics_server
from streams.settings import Settings, get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "sink", "store topics in DuckDB exactly once and publish the marts")
    parser.add_argument(
        "--once", action="store_true", help="drain what is there, publish, and exit"
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=5.0,
        help="with --once: seconds without messages that end the run (5)",
    )
    parser.add_argument("--batch", type=int, default=20_000, help="messages per batch (20000)")
    parser.add_argument(
        "--group",
        default=None,
        help=f"Kafka consumer group id (default {DEFAULT_GROUP}.<namespace>)",
    )
    parser.add_argument(
        "--publish-every", type=float, default=60.0, help="seconds between publications (60)"
    )
    parser.add_argument("--no-publish", action="store_true", help="do not publish (tests)")
    parser.add_argument(
        "--progress-every",
        type=float,
        default=5.0,
        help="seconds between progress lines on stderr (5; 0: every batch)",
    )
    parser.add_argument(
        "--db", type=Path, default=None, help="sink database (default <home>/marts/sink.duckdb)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics (default: off)",
    )
    parser.set_defaults(func=_run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    pub = add_parser(actions, "publish", "publish the marts now (the sink must not be running)")
    pub.add_argument("--db", type=Path, default=None, help="sink database")
    pub.set_defaults(func=_publish)
    add_parser(
        actions, "docs", "print the documentation of every published table (markdown)"
    ).set_defaults(func=_docs)


def _alerter(settings: Settings) -> Callable[[Alert], None]:
    producer = TopicProducer(settings)
    enc = msgspec.json.Encoder()

    def send(alert: Alert) -> None:
        say(f"ALERT {alert.subject}: {alert.message}")
        producer.send("alerts.v1", enc.encode(alert), key=alert.site_id.encode())
        producer.flush()

    return send


def _publisher(settings: Settings) -> Callable[[duckdb.DuckDBPyConnection], object]:
    send = _alerter(settings)

    def run(con: duckdb.DuckDBPyConnection) -> object:
        res = publish(con, settings.marts_dir, alert=send)
        if not res.skipped:
            say(
                f"published generation {res.generation}: {len(res.files)} files"
                + (f", blocked {', '.join(res.blocked)}" if res.blocked else "")
            )
        return res

    return run


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.metrics_port is not None:
        start_metrics_server(args.metrics_port)
        say(f"metrics on http://127.0.0.1:{args.metrics_port}/metrics")
    group = args.group or default_group(settings)
    say(f"sink -> {args.db or sink_db_path(settings)} (group {group})")
    stats = run_sink(
        settings,
        stop,
        db_path=args.db,
        group_id=args.group,
        batch_size=args.batch,
        once=args.once,
        idle_s=args.idle,
        publish_every_s=args.publish_every,
        publisher=None if args.no_publish else _publisher(settings),
        progress=say,
        progress_every_s=args.progress_every,
    )
    print(stats.line())
    return 0


def _publish(args: argparse.Namespace) -> int:
    settings = get_settings()
    con = open_store(args.db or sink_db_path(settings))
    try:
        _publisher(settings)(con)
    finally:
        con.close()
    return 0


def _docs(args: argparse.Namespace) -> int:
    print(render_markdown())
    return 0
