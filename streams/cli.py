"""The ``spillway`` command. Each subcommand lives in ``streams/commands/<name>.py`` and
registers itself with a ``register(subparsers)`` function; this module only finds them."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from streams import commands
from streams.errors import EX_TEMPFAIL, SpillwayError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spillway",
        description="Surplus, curtailment, settlement and carbon for AI + mining sites.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: a readable message
        if getattr(args, "debug", False):
            raise
        print(f"spillway {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
        if isinstance(exc, SpillwayError):
            print(f"spillway {args.command}: {retry_advice(exc)}", file=sys.stderr)
            code = EX_TEMPFAIL if exc.transient else 1
    sys.exit(code or 0)


def retry_advice(exc: SpillwayError) -> str:
    if exc.transient:
        return "this may pass on its own: retrying later may help"
    return "retrying will not help: fix the input or the configuration named above"

