"""``spillway broker start|stop|status``: the local single-node Kafka broker."""

from __future__ import annotations

import argparse

from infra import broker
from streams.commands import Subparsers, add_parser, say
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "broker", "run the local Apache Kafka broker (KRaft, one node)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = add_parser(actions, "start", "fetch Kafka (once), start it, wait until it answers")
    start.add_argument("--timeout", type=float, default=90.0, help="seconds to wait (default 90)")
    start.set_defaults(func=_start)
    add_parser(actions, "stop", "stop the broker cleanly (data is kept)").set_defaults(func=_stop)
    add_parser(actions, "status", "say whether the broker runs").set_defaults(func=_status)
    add_parser(actions, "fetch", "download the Kafka jars only").set_defaults(func=_fetch)


def _start(args: argparse.Namespace) -> int:
    st = broker.start(get_settings(), timeout_s=args.timeout, progress=say)
    print(st.describe())
    return 0


def _stop(args: argparse.Namespace) -> int:
    broker.stop(get_settings(), progress=say)
    return 0


def _status(args: argparse.Namespace) -> int:
    st = broker.status(get_settings())
    print(st.describe())
    return 0 if st.answers else 3


def _fetch(args: argparse.Namespace) -> int:
    print(broker.ensure_jars(get_settings(), progress=say))
    return 0
