"""Agents starved of CPU mid-run (their worker SIGSTOPped for a few seconds, shorter than
the consumer session, so no rebalance: a loaded machine) must still give marts equal to the
offline truth once the data is in: readings that reach a closed second late are restated,
not dropped from the money. Runs the faults harness (simulated site -> agents -> sink on a
private Kafka broker of its own, so the shared broker is never stopped) with only stalls."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import streams.faults.harness as harness
from streams.faults.harness import Processes, RunConfig, run_faults
from streams.faults.schedule import Fault, plan_faults
from streams.settings import Settings, load_settings
from tests.faults.test_faults_kafka import free_port_pair

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
STARVED_S = 4.0


def _starve(settings: Settings, procs: Processes, fault: Fault, say: Any) -> bool:
    """SIGSTOP the agents' worker for ``fault.down_s``, then SIGCONT (no rebalance)."""
    pid = procs.children["agents"].proc.pid
    os.killpg(pid, signal.SIGSTOP)
    try:
        time.sleep(fault.down_s)
    finally:
        os.killpg(pid, signal.SIGCONT)
    say(f"starved the agents for {fault.down_s:.0f} s")
    return False


@pytest.mark.timeout(900)
def test_agents_starved_of_cpu_still_give_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_faults
    monkeypatch.setattr(
        harness, "plan_faults", lambda *a, **kw: plan(*a, **{**kw, "stall_s": STARVED_S})
    )
    monkeypatch.setattr(harness, "_stall", _starve)
    base = load_settings()
    cfg = RunConfig(
        home=tmp_path / "starved",
        broker_port=free_port_pair(),
        libs_from=base.home,
        seconds=120,
        speed=4.0,
        kills_agents=0,
        kills_sink=0,
        broker_restarts=0,
        stalls=2,
        seed=7,
        lateness_s=5,
    )
    lines: list[str] = []
    report, _ = run_faults(base, cfg, lines.append)
    table = report.table()
    print("\n".join(lines) + "\n" + table)
    assert report.survived["stall_agents"] == 2
    # compare_money reports an interval whose POI energy is unknown on both sides (a held
    # interval: None in the truth and in the marts) as a difference; that is agreement.
    both_unknown = re.compile(r"truth None MWh, marts None MWh")
    differences = [d for d in report.comparison.differences if not both_unknown.search(d)]
    assert differences == [], "\n" + table
    c = report.comparison
    assert (c.lost, c.duplicates, c.extra_rows, report.unexpected_exits, report.notes) == (
        0,
        0,
        0,
        [],
        [],
    ), "\n" + table
