"""``spillway settings``: print the effective settings (secrets masked)."""

from __future__ import annotations

import argparse
import json

from streams.commands import Subparsers, add_parser
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    add_parser(sub, "settings", "print the effective settings, secrets masked").set_defaults(
        func=_show
    )


def _show(args: argparse.Namespace) -> int:
    print(json.dumps(get_settings().redacted(), indent=2, default=str))
    return 0
