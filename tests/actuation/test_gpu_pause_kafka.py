"""The actuator on the real broker: an operator's pause survives a restart, a grid need
beyond the miners caps GPUs (fake NVML), measured, then restored at the release, and so
does a silent miner's shortfall when escalation has nothing left to reach for."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import msgspec
import pytest

from schemas.actuation import ActuationOutcome
from schemas.events import CurtailmentEvent, MinerCommand
from streams.actuation.delivery import Policy
from streams.actuation.gpu_caps import CapPolicy, GpuCapAgent
from streams.actuation.runner import AUDIT, CURTAILMENTS, operator_request
from streams.io.kafka import TopicProducer
from streams.settings import Settings
from tests.actuation.fake_fleet import start_fleet
from tests.actuation.fake_nvml import Card, FakeNvml
from tests.actuation.test_actuation_kafka import outcomes_until, send_command, start_actuator

pytestmark = pytest.mark.kafka


async def test_pause_survives_a_restart(fresh_namespace_settings: Settings) -> None:
    settings = fresh_namespace_settings
    f = await start_fleet({"luxos": 2}, site_id="fake-site")
    try:
        act, stop, task = await start_actuator(settings, f, policy=Policy(deadline_s=10))
        p = TopicProducer(settings)
        req = operator_request("fake-site", "ann", "request_pause", "fake-site")
        p.send(AUDIT, msgspec.json.encode(req))
        p.flush()
        deadline = time.monotonic() + 30
        while (act.state is None or not act.state.paused) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert act.state is not None and "fake-site" in act.state.paused
        stop.set()
        await task

        act2, stop2, task2 = await start_actuator(settings, f, policy=Policy(deadline_s=10))
        assert act2.state is not None and "fake-site" in act2.state.paused
        send_command(settings, [m.miner_id for m in f.miners])
        deadline = time.monotonic() + 5
        while act2.counts.get("AuditEvent", 0) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # pause_restored, command_received, suppressed
        stop2.set()
        await task2
        assert all(m.commands == [] for m in f.miners), "a paused site got a command"
        assert act2.counts.get("sent", 0) == 0
    finally:
        await f.stop()


def event(kind: str, at: float, target_w: float = 0.0) -> CurtailmentEvent:
    return CurtailmentEvent(
        event_id="fake-site/curtailment/1",
        site_id="fake-site",
        kind=kind,  # type: ignore[arg-type]
        reasons=["grid"],
        reason_details=["grid:eea level 2"],
        issued_at_s=at,
        target_mining_w=target_w,
        baseline_mining_w=12_000.0,
        deadline_s=at + 10,
        ts_s=at,
    )


GPUS = {"gpu-node-1/gpu0", "gpu-node-1/gpu1", "gpu-node-1/gpu2"}
CAP = CapPolicy(max_duration_s=600, tenants=frozenset({"batch"}))


def gpu_node() -> tuple[FakeNvml, dict[str, GpuCapAgent]]:
    """Three batch cards (one limited to 690 W) and a serving card that may not be capped."""
    nvml = FakeNvml([Card(), Card(), Card(limit_mw=690_000), Card()])
    tenants = {0: "batch", 1: "batch", 2: "batch", 3: "serving"}
    return nvml, {"gpu-node-1": GpuCapAgent(nvml, "gpu-node-1", tenants)}


def capped(o: list[ActuationOutcome]) -> bool:
    return GPUS <= {x.device_id for x in o if x.kind == "complied"}


def restored(o: list[ActuationOutcome]) -> bool:
    return GPUS <= {
        x.device_id for x in o if x.action == "gpu_restore" and x.kind == "acknowledged"
    }


async def release_and_check_restored(
    settings: Settings,
    p: TopicProducer,
    stop: asyncio.Event,
    task: asyncio.Task[None],
    nvml: FakeNvml,
) -> None:
    p.send(CURTAILMENTS, msgspec.json.encode(event("released", time.time())), b"fake-site")
    p.flush()
    outs = await outcomes_until(settings, restored, 30)
    stop.set()
    await task
    assert restored(outs)
    assert [c.limit_mw for c in nvml.cards] == [700_000, 700_000, 690_000, 700_000]


async def test_grid_need_beyond_the_miners_caps_gpus_and_restores_them(
    fresh_namespace_settings: Settings,
) -> None:
    settings = fresh_namespace_settings
    nvml, agents = gpu_node()
    f = await start_fleet({"luxos": 4}, site_id="fake-site")
    try:
        act, stop, task = await start_actuator(settings, f, gpu_agents=agents, cap_policy=CAP)
        p = TopicProducer(settings)
        p.send(CURTAILMENTS, msgspec.json.encode(event("issued", time.time())), b"fake-site")
        p.flush()
        outs = await outcomes_until(settings, capped, 30)
        assert capped(outs), act.counts
        # 4 slept miners still draw 4 x 150 W: 600 W the GPUs give, on the batch cards only.
        limits = [c.limit_mw / 1000 for c in nvml.cards]
        assert limits[3] == 700.0 and all(w == pytest.approx(450.0) for w in limits[:3])
        response = [x.response_s or 0.0 for x in outs if x.kind == "complied"]
        print(
            f"\nGPU caps (fake NVML, power read every 0.5 s): decision to measured compliance "
            f"p50 {statistics.median(response):.2f} s, max {max(response):.2f} s"
        )
        await release_and_check_restored(settings, p, stop, task, nvml)
    finally:
        await f.stop()


async def test_silent_miner_with_nowhere_to_escalate_caps_gpus_for_its_shortfall(
    fresh_namespace_settings: Settings,
) -> None:
    settings = fresh_namespace_settings
    nvml, agents = gpu_node()
    # One tier, no outlets; luxos-0003 acknowledges and never moves.
    f = await start_fleet({"luxos": 4}, behaviours={"luxos-0003": "never"}, site_id="fake-site")
    try:
        act, stop, task = await start_actuator(settings, f, gpu_agents=agents, cap_policy=CAP)
        p = TopicProducer(settings)
        now = time.time()
        # Target 600 W = 4 slept miners' floor: nothing beyond the miners, no GPU need yet.
        p.send(CURTAILMENTS, msgspec.json.encode(event("issued", now, 600.0)), b"fake-site")
        cmd = MinerCommand(
            command_id=f"cmd-{uuid.uuid4().hex[:8]}",
            site_id="fake-site",
            event_id="fake-site/curtailment/1",
            issued_at_s=now,
            action="sleep",
            miner_ids=[m.miner_id for m in f.miners],
            priority=0,
            deadline_s=now + 3.0,
        )
        p.send("miners.commands.v1", msgspec.json.encode(cmd), b"fake-site")
        p.flush()
        outs = await outcomes_until(settings, capped, 30)
        assert capped(outs), act.counts
        assert ("luxos-0003", "failed") in {(x.device_id, x.kind) for x in outs}
        # 2850 W short (3000 W read, 150 W allowed) is more than the batch cards can give:
        # each at its floor, 60 % of its default limit; the serving card untouched.
        limits = [c.limit_mw / 1000 for c in nvml.cards]
        assert limits[3] == 700.0 and all(w == pytest.approx(420.0) for w in limits[:3])
        failed_at = next(x.at_s for x in outs if x.kind == "failed")
        done = [x.at_s - failed_at for x in outs if x.kind == "complied" and x.via == "nvml"]
        print(
            f"\nGPU caps for a miner short after escalation (fake NVML): from the miner's "
            f"failure to measured cap compliance, max {max(done):.2f} s"
        )
        await release_and_check_restored(settings, p, stop, task, nvml)
    finally:
        await f.stop()
