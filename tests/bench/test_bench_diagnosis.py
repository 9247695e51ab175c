"""What the agents' bench prints about a stalled worker (its log may not outlive CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.bench.agents import percentile, print_tail


def test_a_stalled_workers_warnings_and_last_lines_reach_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "worker.log.0"
    lines = [f"[2026-11-27 13:00:{i:02d},000] [1] [INFO] line {i}" for i in range(50)]
    lines[3] = "[2026-11-27 13:00:03,000] [1] [WARNING] telemetry.gpu.v1:0: skipped"
    lines[7] = "[2026-11-27 13:00:07,000] [1] [ERROR] agent crashed"
    log.write_text("\n".join([*lines, "Thread 42 (idle): MainThread", "x" * 400]) + "\n")
    print_tail(log, 3)
    err = capsys.readouterr().err.splitlines()
    assert err[1:3] == [lines[3], lines[7]]  # warnings and errors first, in order
    assert err[-3:] == [lines[-1], "Thread 42 (idle): MainThread", "x" * 300]  # then the tail


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([1.0, 2.0], 99) == 2.0


def test_consumer_performance_result_line_is_read() -> None:
    from streams.bench.limit import parse_consumer_performance

    out = (
        "WARNING: something first\n"
        "2026-12-05 10:40:01:123, 2026-12-05 10:40:03:623, 95.3674, 38.1470, 100000, "
        "40000.0000, 412, 2088, 45.6740, 47892.7203\n"
    )
    assert parse_consumer_performance(out) == {
        "mb": 95.3674,
        "messages": 100000.0,
        "fetch_ms": 2088.0,
    }
    with pytest.raises(ValueError, match="no result line"):
        parse_consumer_performance("Exception in thread main\n")
