"""``spillway schemas export|check``: JSON Schema files for consumers outside Python."""

from __future__ import annotations

import argparse
import json

from schemas.compat import breaking_changes
from schemas.export import JSON_DIR, all_schemas, write_schemas
from streams.commands import Subparsers, add_parser, say


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "schemas", "message contracts as JSON Schema")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_parser(actions, "export", f"write one JSON Schema per topic into {JSON_DIR}").set_defaults(
        func=_export
    )
    add_parser(
        actions, "check", "fail if the code would break consumers of the published files"
    ).set_defaults(func=_check)


def _export(args: argparse.Namespace) -> int:
    for path in write_schemas():
        say(f"wrote {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for topic, schema in all_schemas().items():
        path = JSON_DIR / f"{topic}.json"
        if path.exists():
            problems += breaking_changes(topic, json.loads(path.read_text()), schema)
    for p in problems:
        print(p)
    return 1 if problems else 0
