"""The ``replay`` and ``collect`` subcommands are found and reject bad input readably."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import build_parser, main

SMALL = Path(__file__).parents[1] / "fixtures" / "scenario" / "small.toml"


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", str(SMALL), "--speed", "60"],
        ["replay", "a.csv", "b.tsv", "--point", "LZ_WEST"],
        ["collect", "asic", "fleet.toml", "--once"],
        ["collect", "meters", "meters.toml"],
        ["collect", "nvml", "--node-id", "n1"],
        ["collect", "grid", "np6-905-cd.csv"],
    ],
)
def test_subcommands_parse(argv: list[str]) -> None:
    assert callable(build_parser().parse_args(argv).func)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "missing.toml"], "cannot read scenario missing.toml"),
        (["replay", str(SMALL), "other.csv"], "one scenario file"),
        (["replay", "x.csv", "--start", "2026-01-01T00:00:00Z"], "need a scenario file"),
        (["collect", "asic", "missing.toml"], "cannot read missing.toml"),
    ],
)
def test_errors_are_one_readable_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    assert message in capsys.readouterr().err
