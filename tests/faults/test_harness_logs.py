"""What the fault harness reads from the agents' logs."""

from __future__ import annotations

from streams.faults.harness import skips_read_back


def test_skips_read_back_are_counted_from_the_agents_warnings() -> None:
    lines = [  # as an agents worker logged them in a short-form run
        "[2026-11-26 22:07:10,096] [29627] [WARNING] f2944faa8.telemetry.asic.v1:0: the "
        "consumer skipped offsets 96..98; read 3 of them back from Kafka ",
        "[2026-11-26 22:07:10,157] [29627] [WARNING] f2944faa8.telemetry.asic.v1:4: the "
        "consumer skipped offsets 95..98; read 4 of them back from Kafka ",
        "[2026-11-26 22:07:11,000] [29627] [WARNING] Heartbeat failed",
    ]
    assert skips_read_back(lines) == (2, 7)
    assert skips_read_back([]) == (0, 0)
