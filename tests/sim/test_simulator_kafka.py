"""The simulator on the real broker: frames arrive in full, and a miner command sent to
miners.commands.v1 makes those miners' reported power fall (the closed loop)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import msgspec
import pytest

from schemas.events import MinerCommand
from schemas.registry import contract_for
from schemas.telemetry import AsicFrame
from schemas.validation import Limits, Rejection
from streams.decisions.fleet import fleet_roster
from streams.io.kafka import TopicProducer, drain, make_consumer
from streams.settings import Settings
from streams.sim.asics import SLEEP_W
from streams.sim.model import Step
from streams.sim.runner import SimStats, run_simulator
from tests.sim.helpers import small

pytestmark = pytest.mark.kafka

TOPICS = ("telemetry.gpu.v1", "telemetry.asic.v1", "telemetry.meter.v1")


def _command(site_id: str, ids: list[str], now: float) -> bytes:
    cmd = MinerCommand(
        command_id=uuid.uuid4().hex,
        site_id=site_id,
        event_id=None,
        issued_at_s=now,
        action="sleep",
        miner_ids=ids,
        priority=1,
        deadline_s=now + 60,
    )
    return msgspec.json.encode(cmd)


def test_simulator_closed_loop_through_kafka(fresh_namespace_settings: Settings) -> None:
    settings = fresh_namespace_settings
    sf = small(never_share=0.0, late_share=0.0)
    seconds = 30
    start = float(int(time.time()))
    s21 = fleet_roster(sf.site).model("S21").miner_ids
    running = threading.Event()
    box: dict[str, Any] = {}

    def on_step(step: Step) -> None:
        if step.seq == 3:
            running.set()

    def run() -> None:
        try:
            box["stats"] = run_simulator(
                settings,
                sf.site,
                sim=sf.sim,
                start_s=start,
                seconds=seconds,
                speed=10.0,
                on_step=on_step,
            )
        except BaseException as exc:  # surfaced below, in the test thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert running.wait(30), box.get("error")
    producer = TopicProducer(settings)
    producer.send("miners.commands.v1", _command("other-site", s21, start), b"other-site")
    producer.send("miners.commands.v1", _command(sf.site.site_id, s21, start), b"small")
    producer.flush()
    thread.join(60)
    assert "error" not in box, box.get("error")
    stats: SimStats = box["stats"]
    assert stats.steps == seconds
    # 10 x: step k starts k / 10 s after the first, so 30 steps take at least 2.9 s.
    assert (seconds - 1) / 10 <= stats.wall_s < 20
    assert stats.commands == 1  # the other site's command is not ours
    assert stats.miners_commanded == len(s21)

    consumer = make_consumer(settings, f"test-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([producer.topic(t) for t in TOPICS])
    got: list[Any] = []
    try:
        drain(consumer, got.extend, idle_s=3.0, max_s=60)
    finally:
        consumer.close()
    limits = Limits(now_s=time.time())
    frames: dict[str, list[Any]] = defaultdict(list)
    for msg in got:
        base = msg.topic().split(".", 1)[1]
        frame = contract_for(base).decode(msg.value(), limits)
        assert not isinstance(frame, Rejection), frame
        frames[base].append(frame)

    gpu_racks, asic_racks = 3, 4  # small.toml: 24 nodes / 8; 150 + 120 miners / 100
    assert len(frames["telemetry.gpu.v1"]) == gpu_racks * seconds
    assert len(frames["telemetry.asic.v1"]) == asic_racks * seconds
    assert len(frames["telemetry.meter.v1"]) == seconds
    readings = (
        sum(len(f.power_w) for f in frames["telemetry.gpu.v1"])
        + sum(len(f.miner_id) for f in frames["telemetry.asic.v1"])
        + sum(len(f.meter_id) for f in frames["telemetry.meter.v1"])
    )
    assert readings == stats.readings == seconds * (24 * 8 + 270 + 3)

    # S21 power by second, from the frames as a consumer sees them.
    wanted = set(s21)
    by_second: dict[float, list[float]] = defaultdict(list)
    for f in frames["telemetry.asic.v1"]:
        assert isinstance(f, AsicFrame)
        for mid, p in zip(f.miner_id, f.power_w, strict=True):
            if mid in wanted and p is not None:
                by_second[f.ts_s].append(p)
    seconds_seen = sorted(by_second)
    assert len(seconds_seen) == seconds
    first = by_second[seconds_seen[0]]
    assert min(first) > 3000.0  # S21 at ~3500 W before the command
    fell = [t for t in seconds_seen if max(by_second[t]) <= SLEEP_W * 1.05]
    assert fell, "the commanded miners never reached sleep power"
    assert fell[0] > seconds_seen[3]  # after the command, not before
    assert all(t in fell for t in seconds_seen if t >= fell[0])  # and they stay asleep
