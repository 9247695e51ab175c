"""Miners short after escalation (pure): a grid or 4CP event whose target the miners could
reach, but a silent miner with no higher tier or outlet left: its shortfall becomes GPU
need (within the CapPolicy), and goes away when it complies late, is woken, or the event
ends. Economic and site-limit events never cap GPUs for it."""

from __future__ import annotations

import pytest

from schemas.actuation import AuditEvent
from schemas.events import CurtailmentEvent
from streams.actuation.delivery import (
    Ack,
    Command,
    Device,
    Output,
    Policy,
    Reading,
    State,
    Tick,
    new_state,
    shortfall_w,
    step,
    watching,
)
from streams.actuation.gpu_caps import CapPolicy, GpuSlot, floor_w
from streams.actuation.gpu_tier import (
    ENDED_KINDS,
    GpuNeed,
    GpuOutput,
    MinersShort,
    SetLimit,
    TierState,
    gpu_step,
    miners_floor_w,
    need_beyond_miners,
)

CAP = CapPolicy(min_cap_frac=0.6, max_duration_s=600, tenants=frozenset({"batch"}))
P = Policy(deadline_s=10, sends_per_s=100, burst=100)
FLEET = [Device("a", "luxos", nominal_w=3000), Device("b", "luxos", nominal_w=3000)]
"""One tier, no outlets: nothing for an escalation to reach for."""
SLOTS = tuple(
    GpuSlot(i, "batch" if i < 2 else "serving", 700.0, 200.0, 700.0, 700.0, 650.0, "n1")
    for i in range(3)
)


def event(kind: str, reasons: list[str], at: float) -> CurtailmentEvent:
    return CurtailmentEvent(
        event_id="e1",
        site_id="site",
        kind=kind,  # type: ignore[arg-type]
        reasons=reasons,  # type: ignore[arg-type]
        reason_details=[],
        issued_at_s=100.0,
        target_mining_w=300.0,  # both miners asleep: the miners alone could do it
        baseline_mining_w=6000.0,
        deadline_s=110.0,
        ts_s=at,
    )


def gpu_need(ev: CurtailmentEvent) -> GpuNeed:
    """What the runner hands the GPU tier for an event (runner.Actuator.gpu_need)."""
    floor = miners_floor_w(FLEET, "site", P)
    need = need_beyond_miners(ev, floor)
    ended = ev.kind in ENDED_KINDS
    return GpuNeed("site", ev.event_id, tuple(ev.reasons), need, ev.ts_s, 110.0, SLOTS, ended)


def audits(out: list[Output] | list[GpuOutput], action: str) -> list[AuditEvent]:
    return [o for o in out if isinstance(o, AuditEvent) and o.action == action]


def silent_b(reasons: list[str]) -> tuple[State, TierState, list[GpuOutput]]:
    """The event, both miners commanded to sleep, ``a`` complies, ``b`` stays at 450 W past
    its deadline: 300 W short once escalation finds nothing to reach for."""
    t, gout = gpu_step(TierState(), [gpu_need(event("issued", reasons, 100.0))], CAP, P)
    assert t.needs["site"].need_w == 0.0  # the miners' floor is 300 W: no need beyond them
    s, _ = step(new_state(FLEET, 100.0, P), [Command("c1", "site", "sleep", ("a", "b"), 100.0)], P)
    s, _ = step(s, [Tick(100.0), Ack("a", "c1", 1, True, 100.5), Ack("b", "c1", 1, True, 100.5)], P)
    s, _ = step(s, [Reading("a", 100.0, 102.0), Reading("b", 450.0, 102.0)], P)
    s, out = step(s, [Tick(110.5)], P)
    (exhausted,) = audits(out, "escalation_exhausted")
    assert exhausted.subject == "b" and exhausted.detail == "300 W short"
    assert shortfall_w(s, "site") == pytest.approx(300.0)
    short = MinersShort("site", shortfall_w(s, "site"), 110.5, SLOTS)
    t, more = gpu_step(t, [short], CAP, P)
    return s, t, gout + more


def test_grid_event_caps_allowed_gpus_for_the_miners_shortfall_and_restores_at_release() -> None:
    _, t, out = silent_b(["grid"])
    caps = [x for x in out if isinstance(x, SetLimit)]
    assert {x.device_id for x in caps} == {"n1/gpu0", "n1/gpu1"}  # the serving card stays
    by_index = {s.index: s for s in SLOTS}
    assert all(x.action == "gpu_cap" for x in caps)
    assert all(x.limit_w >= floor_w(by_index[x.index], CAP) for x in caps)  # 420 W min
    freed = sum(by_index[x.index].power_w - x.limit_w for x in caps)
    assert freed == pytest.approx(300.0)  # the shortfall, spread over the batch cards
    (raised,) = audits(out, "gpu_need_shortfall")
    assert raised.detail == "gpu need raised by 300 W: miners short after escalation"
    assert t.episodes["site"].need_w == pytest.approx(300.0)

    t, out = gpu_step(t, [gpu_need(event("released", ["grid"], 200.0))], CAP, P)
    assert {(x.device_id, x.action, x.limit_w) for x in out if isinstance(x, SetLimit)} == {
        ("n1/gpu0", "gpu_restore", 700.0),
        ("n1/gpu1", "gpu_restore", 700.0),
    }
    assert t.episodes == {} and t.needs == {}
    # The miner still short no longer raises anything once the event ended.
    t, out = gpu_step(t, [MinersShort("site", 0.0, 201.0, ())], CAP, P)
    assert out == []


@pytest.mark.parametrize("reasons", [["economic"], ["site_limit"], ["economic", "site_limit"]])
def test_economic_or_site_limit_event_with_the_same_silent_miner_caps_nothing(
    reasons: list[str],
) -> None:
    _, t, out = silent_b(reasons)
    assert [x for x in out if isinstance(x, SetLimit)] == []
    assert audits(out, "gpu_need_shortfall") == [] and t.episodes == {}


def test_a_late_compliance_clears_the_shortfall_and_restores_the_caps() -> None:
    s, t, _ = silent_b(["4cp"])
    assert "b" in watching(s)  # still read after its failure
    s, cleared = step(s, [Reading("b", 140.0, 130.0)], P)
    assert [o.detail for o in audits(cleared, "shortfall_cleared")] == [
        "300 W no longer short: complied (c1)"
    ]
    assert shortfall_w(s, "site") == 0.0 and "b" not in watching(s)
    t, out = gpu_step(t, [MinersShort("site", 0.0, 130.0, ())], CAP, P)
    restores = [x for x in out if isinstance(x, SetLimit)]
    assert [(x.action, x.limit_w) for x in restores] == [("gpu_restore", 700.0)] * 2
    (back,) = audits(out, "gpu_need_shortfall")
    assert back.detail == "gpu need back to 0 W: miners no longer short"


def test_waking_the_silent_miner_clears_its_shortfall() -> None:
    s, _, _ = silent_b(["grid"])
    s, out = step(s, [Command("c2", "site", "wake", ("a", "b"), 150.0)], P)
    assert shortfall_w(s, "site") == 0.0
    assert [o.subject for o in audits(out, "shortfall_cleared")] == ["b"]


def test_a_shortfall_known_before_the_event_arrives_raises_its_need() -> None:
    """The miners' shortfall may reach the GPU tier before the event it belongs to."""
    t, _ = gpu_step(TierState(), [MinersShort("site", 300.0, 110.5, SLOTS)], CAP, P)
    t, out = gpu_step(t, [gpu_need(event("updated", ["grid"], 111.0))], CAP, P)
    assert len([x for x in out if isinstance(x, SetLimit)]) == 2
    assert [a.detail for a in audits(out, "gpu_need_shortfall")] == [
        "gpu need raised by 300 W: miners short after escalation"
    ]
    # The same event updated again: same need, nothing more sent or audited.
    t, out = gpu_step(t, [gpu_need(event("updated", ["grid"], 112.0))], CAP, P)
    assert out == []
    # An economic event with the same shortfall known: caps nothing, says nothing.
    t, out = gpu_step(TierState(), [MinersShort("site", 300.0, 110.5, SLOTS)], CAP, P)
    t, out = gpu_step(t, [gpu_need(event("issued", ["economic"], 111.0))], CAP, P)
    assert out == []


def test_an_outlet_cut_that_complies_clears_the_shortfall() -> None:
    fleet = [Device("b", "luxos", nominal_w=3000, outlet="pdu/0")]
    s, _ = step(new_state(fleet, 100.0, P), [Command("c1", "site", "sleep", ("b",), 100.0)], P)
    s, _ = step(s, [Tick(100.0), Ack("b", "c1", 1, True, 100.5), Reading("b", 3000, 101)], P)
    s, out = step(s, [Tick(110.5)], P)
    assert audits(out, "escalation_exhausted") and shortfall_w(s, "site") == 2850.0
    s, _ = step(s, [Tick(110.6), Ack("b", "c1/outlet", 1, True, 110.8)], P)
    s, out = step(s, [Reading("b", 0.0, 111.5)], P)
    assert shortfall_w(s, "site") == 0.0 and audits(out, "shortfall_cleared")
