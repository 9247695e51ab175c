"""``spillway watch`` and ``spillway dashboard`` are found and parse their options."""

from __future__ import annotations

import argparse

import pytest

from streams.commands import dashboard, watch


def build_parser() -> argparse.ArgumentParser:
    # Only these two commands: streams.cli.build_parser imports every command (seconds).
    parser = argparse.ArgumentParser(prog="spillway")
    sub = parser.add_subparsers(dest="command", required=True)
    watch.register(sub)
    dashboard.register(sub)
    return parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["watch"], {"site": None, "lookback": 900.0, "from_beginning": False,
                     "hashprice": None, "refresh": 4.0, "seconds": None}),
        (["watch", "--site", "s1", "--hashprice", "42.5", "--from-beginning"],
         {"site": "s1", "hashprice": 42.5, "from_beginning": True}),
        (["dashboard"], {"port": 8050, "lookback": 900.0, "json_logs": False}),
        (["dashboard", "--port", "0", "--lookback", "60", "--json-logs", "--seconds", "5"],
         {"port": 0, "lookback": 60.0, "json_logs": True, "seconds": 5.0}),
    ],
)
def test_options(argv, expected):
    args = build_parser().parse_args(argv)
    assert callable(args.func)
    assert {k: getattr(args, k) for k in expected} == expected


def test_dashboard_has_no_host_option():
    # Bound to 127.0.0.1 only: the page has no authentication.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dashboard", "--host", "0.0.0.0"])
