"""``spillway topics provision|list``: the declared topics on the cluster."""

from __future__ import annotations

import argparse

from infra.provision import provision
from infra.topics import TOPICS, full_name
from streams.commands import Subparsers, add_parser, say
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "topics", "declared Kafka topics")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_parser(
        actions, "provision", "create or reconcile every declared topic (idempotent)"
    ).set_defaults(func=_provision)
    add_parser(actions, "list", "print the declared topics").set_defaults(func=_list)


def _provision(args: argparse.Namespace) -> int:
    settings = get_settings()
    plan = provision(settings)
    for line in plan.describe() or ["nothing to change"]:
        say(line)
    return 0


def _list(args: argparse.Namespace) -> int:
    ns = get_settings().topic_namespace
    for t in TOPICS:
        name = full_name(t.name, ns)
        print(f"{name:32} {t.partitions:3} {t.cleanup_policy:8} key={t.key}: {t.purpose}")
    return 0
