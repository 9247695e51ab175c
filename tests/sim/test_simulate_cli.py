"""``spillway simulate`` argument parsing."""

from __future__ import annotations

import argparse

import pytest

from streams.cli import build_parser
from streams.commands.simulate import _speed, _start


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max", None), ("MAX", None), ("1", 1.0), ("10", 10.0), ("0.5", 0.5)],
)
def test_speed(text: str, expected: float | None) -> None:
    assert _speed(text) == expected


@pytest.mark.parametrize("text", ["fastest", "-2", ""])
def test_bad_speed(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--speed"):
        _speed(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-01T00:00:00Z", 1_782_864_000.0),
        ("2026-07-01T00:00:00", 1_782_864_000.0),  # naive means UTC
        ("2026-06-30T19:00:00-05:00", 1_782_864_000.0),  # CDT
        ("1782864000", 1_782_864_000.0),
    ],
)
def test_start(text: str, expected: float) -> None:
    assert _start(text) == expected


def test_bad_start() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--start"):
        _start("yesterday")


def test_subcommand_is_registered() -> None:
    args = build_parser().parse_args(
        [
            "simulate",
            "--site",
            "infra/sites/small.toml",
            "--seconds",
            "5",
            "--speed",
            "max",
            "--json",
        ]
    )
    assert (args.seconds, args.speed, args.json, args.drop) == (5, None, True, 0.0)
