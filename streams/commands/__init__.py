"""Subcommands of ``spillway``; each module exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse
from typing import Any

Subparsers = Any  # argparse's _SubParsersAction is private; this alias documents intent


def add_parser(sub: Subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def say(message: str) -> None:
    """Progress lines go to stderr so stdout stays machine-readable."""
    import sys

    print(f"• {message}", file=sys.stderr, flush=True)
