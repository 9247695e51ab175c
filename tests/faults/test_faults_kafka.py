"""Fault injection against real brokers (marker ``faults``).

- A clean run (no faults) on the private broker equals the offline truth: the harness and
  the comparison are right before any fault is blamed.
- The short form: 3 SIGKILLs of the agents, 3 of the sink, a broker stop/start and a
  SIGSTOP beyond the agents' session timeout (a rebalance), on a private broker; after
  recovery the marts must equal the truth, nothing lost, nothing duplicated.
- The smallest reproduction of what the first short-form runs found: agents that start
  behind a backlog (as after any kill or stall) must still give the truth.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from schemas.events import SitePower
from streams.agents.sites import publish_site
from streams.faults.compare import Comparison, compare_power
from streams.faults.harness import (
    Producer,
    RunConfig,
    read_topic,
    run_faults,
    wait_assigned,
)
from streams.faults.scenario import aligned_start, build_scenario
from streams.faults.truth import compute_truth
from streams.io.kafka import TopicProducer
from streams.pipeline.procs import child_env, start_child
from streams.settings import Settings, load_settings

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow]
LATENESS = 5


def free_port_pair() -> int:
    """A port whose next port is free too (the private broker's controller uses port + 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port > 65000:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for the private broker")


def _run(tmp_path: Path, **kw: int | float) -> str:
    base = load_settings()
    cfg = RunConfig(home=tmp_path / "faults", broker_port=free_port_pair(),
                    libs_from=base.home, lateness_s=LATENESS, **kw)  # type: ignore[arg-type]
    lines: list[str] = []
    report, _ = run_faults(base, cfg, lines.append)
    table = report.table()
    print("\n".join(lines) + "\n" + table)
    assert report.ok, "\n" + table
    return table


def test_clean_run_equals_the_truth(tmp_path: Path) -> None:
    _run(tmp_path, seconds=120, speed=4.0, kills_agents=0, kills_sink=0, broker_restarts=0,
         stalls=0)


@pytest.mark.timeout(900)
def test_short_form_kills_broker_restart_and_stall_change_nothing(tmp_path: Path) -> None:
    _run(tmp_path, seconds=240, speed=2.0, kills_agents=3, kills_sink=3, broker_restarts=1,
         stalls=1, seed=1)


def test_agents_starting_behind_a_backlog_give_the_truth(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    """No kill at all: 60 s of telemetry are already in Kafka when the worker starts, as after
    a restart, and 30 s more follow live. Every second must still hold all its readings."""
    s = fresh_namespace_settings
    backlog, live = 60, 30
    sc = build_scenario(backlog + live, aligned_start(time.time(), backlog + live),
                        hostile_every_s=0)
    truth = compute_truth(sc, LATENESS)
    publish_site(s, sc.site)
    producer = TopicProducer(s)
    for m in sc.messages:
        if m.second < backlog:
            producer.send(m.topic, m.value, key=m.key)
    producer.flush()
    tail = [replace(m, second=m.second - backlog) for m in sc.messages if m.second >= backlog]
    args = ["agents", "--site", sc.site.site_id, "--tick", "off", "--lateness", str(LATENESS),
            "--data-dir", str(tmp_path / "agents")]
    child = start_child("agents", args, child_env(s, tmp_path), tmp_path / "agents.log")
    try:
        assert wait_assigned(s, f"{s.topic_namespace}.spillway-agents", 90), child.tail()
        feeder = Producer(s, tail, 4.0)
        feeder.start()
        feeder.join(120)
        assert feeder.error is None, feeder.error
        deadline = time.monotonic() + 120
        got: list[SitePower] = []
        while time.monotonic() < deadline and len(got) < len(truth.powers):
            time.sleep(2.0)
            got = [msgspec.json.decode(v, type=SitePower)
                   for _, v in read_topic(s, "site.power.v1")]
    finally:
        child.stop(30)
    out = Comparison()
    compare_power([msgspec.to_builtins(p) for p in truth.powers],
                  [msgspec.to_builtins(p) for p in got], out)
    late = sum(p.late_readings for p in got)
    assert not out.differences, (
        f"{len(got)} seconds, {late} readings reported late:\n" + "\n".join(out.differences))
