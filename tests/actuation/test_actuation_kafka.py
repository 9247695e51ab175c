"""The actuator on the real broker against 500+ fake miners of six firmware kinds, each over
its own protocol: a curtail command, measured compliance per miner, a silent miner
escalated to its PDU outlet, a kill in the middle re-asserted from the compacted topic,
and dry run sending nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import cast

import msgspec
import pytest

from infra.topics import full_name
from schemas.actuation import ActuationOutcome
from schemas.events import MinerCommand
from streams.actuation.delivery import Policy
from streams.actuation.fleet import fleet_from_doc
from streams.actuation.runner import AUDIT, OUTCOMES, Actuator, operator_request
from streams.io.kafka import TopicProducer, make_consumer
from streams.settings import Settings
from tests.actuation.fake_fleet import FakeFleet, start_fleet

pytestmark = pytest.mark.kafka

COUNTS = {
    "luxos": 110,
    "braiins": 70,
    "whatsminer": 100,
    "whatsminer_v3": 100,
    "avalon": 70,
    "antminer": 60,
}
SILENT = "luxos-0007"
SPARES = [f"luxos-{i:04d}" for i in range(100, 110)]
"""Tier 1: not in the command; the silent miner's shortfall reaches for one of them."""
POLICY = Policy(deadline_s=10.0, outlet_deadline_s=10.0, ack_timeout_s=5.0)


@contextlib.asynccontextmanager
async def fake_fleet() -> AsyncIterator[FakeFleet]:
    """Started inside the test, on the test's own event loop (an async fixture would serve
    from the session loop, which does not run while a function-scoped test does)."""
    f = await start_fleet(
        COUNTS,
        behaviours={SILENT: "never"},
        tiers={m: 1 for m in SPARES},
        outlets_for={SILENT},
        down_s=1.0,
        up_s=4.0,
    )
    try:
        yield f
    finally:
        await f.stop()


def commanded(f: FakeFleet) -> list[str]:
    return [m.miner_id for m in f.miners if m.miner_id not in SPARES]


def send_command(settings: Settings, ids: list[str]) -> MinerCommand:
    c = MinerCommand(
        command_id=f"cmd-{uuid.uuid4().hex[:8]}",
        site_id="fake-site",
        event_id=None,
        issued_at_s=time.time(),
        action="sleep",
        miner_ids=ids,
        priority=0,
        deadline_s=time.time() + POLICY.deadline_s,
    )
    p = TopicProducer(settings)
    p.send("miners.commands.v1", msgspec.json.encode(c), b"fake-site")
    p.flush()
    return c


async def outcomes_until(
    settings: Settings, done: Callable[[list[ActuationOutcome]], bool], timeout_s: float
) -> list[ActuationOutcome]:
    consumer = make_consumer(settings, f"t-outcomes-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([full_name(OUTCOMES, settings.topic_namespace)])
    got: list[ActuationOutcome] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done(got):
            msgs = await asyncio.to_thread(consumer.consume, 1000, 0.2)
            got += [
                msgspec.json.decode(cast(bytes, m.value()), type=ActuationOutcome)
                for m in msgs
                if m.error() is None and m.value()
            ]
    finally:
        consumer.close()
    return got


def complied(outs: list[ActuationOutcome]) -> dict[str, ActuationOutcome]:
    return {o.device_id: o for o in outs if o.kind == "complied"}


async def start_actuator(
    settings: Settings, f: FakeFleet, **kw: object
) -> tuple[Actuator, asyncio.Event, asyncio.Task[None]]:
    act = Actuator(settings, fleet_from_doc(f.doc), group_id="t-actuator", poll_period_s=0.5, **kw)  # type: ignore[arg-type]
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(act.run(stop, ready))
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait([waiter, task], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises what stopped it
    assert ready.is_set(), "the actuator did not join its group within 60 s"
    return act, stop, task


async def test_500_miners_curtail_comply_and_the_silent_one_is_cut_at_its_outlet(
    fresh_namespace_settings: Settings,
) -> None:
    async with fake_fleet() as fleet:
        settings = fresh_namespace_settings
        act, stop, task = await start_actuator(settings, fleet, policy=POLICY)
        ids = commanded(fleet)
        assert len(ids) == 500
        cmd = send_command(settings, ids)

        def finished(outs: list[ActuationOutcome]) -> bool:
            ok = complied(outs)
            return all(m in ok for m in ids) and any(o.device_id in SPARES for o in ok.values())

        outs = await outcomes_until(settings, finished, 90)
        stop.set()
        await task
        ok = complied(outs)
        assert set(ids) <= set(ok), f"not complied: {sorted(set(ids) - set(ok))[:10]}; {act.counts}"
        for m in fleet.miners:
            if m.miner_id in ids and m.miner_id != SILENT:
                assert m.power() <= 0.05 * m.nominal_w, m.miner_id
        # The silent miner: acknowledged, never moved, failed at its deadline, cut at its outlet.
        silent = [o for o in outs if o.device_id == SILENT]
        assert [o.kind for o in silent if o.kind in ("failed", "escalated")][:2] == [
            "failed",
            "escalated",
        ]
        assert ok[SILENT].action == "outlet_off" and ok[SILENT].via == "outlet"
        assert not fleet.by_id(SILENT).powered
        spare = [o for o in ok.values() if o.device_id in SPARES]
        assert spare and all(o.command_id.startswith(f"{cmd.command_id}/tier1/") for o in spare)
        # Stock antminers have no firmware control: all of them went through the PDU.
        assert all(ok[m].via == "outlet" for m in ids if m.startswith("antminer"))
        firmware = [ok[m].response_s or 0.0 for m in ids if m != SILENT]
        acked = [
            o.at_s - o.issued_at_s
            for o in outs
            if o.kind == "acknowledged" and o.command_id == cmd.command_id
        ]
        print(
            f"\ndelivery: last of {len(acked)} acknowledgements {max(acked):.2f} s after the "
            f"decision ({len(acked) / max(acked):.0f} acknowledged commands/s, first "
            f"{min(acked):.2f} s); fake ramp down {1.0:.1f} s, power read every 0.5 s"
        )
        print(
            f"\n500 fake miners, decision to measured compliance: "
            f"p50 {statistics.median(firmware):.2f} s, "
            f"p95 {statistics.quantiles(firmware, n=20)[18]:.2f} s, max {max(firmware):.2f} s; "
            f"silent miner via outlet {ok[SILENT].response_s:.2f} s; counts {act.counts}"
        )


async def test_kill_in_the_middle_reasserts_the_commands_in_force(
    fresh_namespace_settings: Settings,
) -> None:
    async with fake_fleet() as fleet:
        settings = fresh_namespace_settings
        slow = Policy(deadline_s=30.0, sends_per_s=60.0, burst=60.0)
        act, _stop, task = await start_actuator(settings, fleet, policy=slow)
        ids = commanded(fleet)
        send_command(settings, ids)
        deadline = time.monotonic() + 60
        while act.counts.get("sent", 0) < 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()  # a crash: nothing more is flushed or committed
        with pytest.raises(asyncio.CancelledError):
            await task
        before = {m.miner_id for m in fleet.miners if m.commands or not m.powered}
        assert 0 < len(before) < len(ids), "the kill must land in the middle of the delivery"

        act2, stop2, task2 = await start_actuator(settings, fleet, policy=Policy(deadline_s=30.0))
        outs = await outcomes_until(settings, lambda o: set(ids) - {SILENT} <= set(complied(o)), 90)
        stop2.set()
        await task2
        assert set(ids) - {SILENT} <= set(complied(outs))
        got = {m.miner_id for m in fleet.miners if m.commands or not m.powered}
        assert set(ids) <= got, "every miner got the command in the end"
        assert act2.counts.get("sent", 0) >= len(ids) - len(before)


async def test_dry_run_sends_nothing(fresh_namespace_settings: Settings) -> None:
    async with fake_fleet() as fleet:
        settings = fresh_namespace_settings
        act, stop, task = await start_actuator(settings, fleet, policy=Policy(dry_run=True))
        ids = commanded(fleet)
        send_command(settings, ids)
        outs = await outcomes_until(
            settings, lambda o: len({x.device_id for x in o if x.kind == "dry_run"}) >= len(ids), 60
        )
        stop.set()
        await task
        assert {x.device_id for x in outs if x.kind == "dry_run"} == set(ids)
        assert not [x for x in outs if x.kind == "sent"]
        assert all(m.commands == [] for m in fleet.miners)
        assert fleet.pdu.writes == []


async def test_operator_pause_suppresses_automatic_commands_and_override_goes_through(
    fresh_namespace_settings: Settings,
) -> None:
    settings = fresh_namespace_settings
    f = await start_fleet({"luxos": 2, "whatsminer": 2}, site_id="fake-site")
    try:
        act, stop, task = await start_actuator(settings, f, policy=Policy(deadline_s=10))
        p = TopicProducer(settings)
        p.send(
            AUDIT,
            msgspec.json.encode(operator_request("fake-site", "ann", "request_pause", "fake-site")),
        )
        p.flush()
        deadline = time.monotonic() + 30
        while (
            act.state is None or "fake-site" not in act.state.paused
        ) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert act.state is not None and "fake-site" in act.state.paused
        send_command(settings, [m.miner_id for m in f.miners])
        override = operator_request(
            "fake-site",
            "ann",
            "request_override",
            "ov-1",
            json.dumps({"action": "sleep", "miner_ids": ["whatsminer-0001"]}),
        )
        p.send(AUDIT, msgspec.json.encode(override))
        p.flush()
        outs = await outcomes_until(settings, lambda o: "whatsminer-0001" in complied(o), 30)
        stop.set()
        await task
        assert set(complied(outs)) == {"whatsminer-0001"}
        assert complied(outs)["whatsminer-0001"].command_id == "ov-1"
        assert [m.miner_id for m in f.miners if m.commands] == ["whatsminer-0001"]
    finally:
        await f.stop()
