"""The GPU tier (pure): the need beyond the miners, caps within policy, measured like a
miner's command, restored when the need ends or the maximum duration passes."""

from __future__ import annotations

from typing import Literal

import pytest

from schemas.actuation import ActuationOutcome, AuditEvent, CommandInForce
from schemas.events import CurtailmentEvent
from streams.actuation.delivery import Ack, Device, Policy, Reading, Tick
from streams.actuation.gpu_caps import CapPolicy, GpuSlot
from streams.actuation.gpu_tier import (
    GpuNeed,
    GpuOutput,
    GpuRecover,
    SetLimit,
    TierState,
    gpu_reason,
    gpu_step,
    miners_floor_w,
    need_beyond_miners,
)

EventKind = Literal["issued", "updated", "achieved", "released", "ended"]
"""CurtailmentEvent.kind."""

CAP = CapPolicy(min_cap_frac=0.6, max_duration_s=600, tenants=frozenset({"batch"}))
P = Policy(deadline_s=10, backoff_s=1, max_attempts=3)
SLOTS = tuple(
    GpuSlot(i, "batch" if i < 2 else "serving", 700.0, 200.0, 700.0, 700.0, 650.0, "n1")
    for i in range(3)
)


def need(w: float, reasons: tuple[str, ...] = ("grid",), at: float = 100.0, ev: str = "e1"):
    return GpuNeed("site", ev, reasons, w, at, at + 10, SLOTS)


def outcomes(out: list[GpuOutput], kind: str | None = None) -> list[ActuationOutcome]:
    return [o for o in out if isinstance(o, ActuationOutcome) and kind in (None, o.kind)]


def sets(out: list[GpuOutput]) -> list[SetLimit]:
    return [o for o in out if isinstance(o, SetLimit)]


def audits(out: list[GpuOutput]) -> list[str]:
    return [o.action for o in out if isinstance(o, AuditEvent)]


def acked(s: TierState, at: float) -> tuple[TierState, list[GpuOutput]]:
    acks = [Ack(t.device_id, t.command_id, t.attempt, True, at) for t in s.tracks.values()]
    return gpu_step(s, acks, CAP, P)


def test_need_is_what_the_miners_cannot_give() -> None:
    fleet = [
        Device("a", "luxos", nominal_w=3000, site_id="site"),
        Device("b", "antminer", nominal_w=3200, outlet="p/1", site_id="site"),
        Device("c", "luxos", nominal_w=3000, site_id="other"),
    ]
    floor = miners_floor_w(fleet, "site", P)
    assert floor == pytest.approx(150.0)  # a slept miner draws 5 %; a cut outlet 0 W

    def ev(kind: EventKind, target: float) -> CurtailmentEvent:
        return CurtailmentEvent(
            event_id="e",
            site_id="site",
            kind=kind,
            reasons=["grid"],
            reason_details=[],
            issued_at_s=0,
            target_mining_w=target,
            baseline_mining_w=6200,
            deadline_s=10,
            ts_s=0,
        )

    assert need_beyond_miners(ev("issued", 0.0), floor) == pytest.approx(150.0)
    assert need_beyond_miners(ev("updated", 1000.0), floor) == 0.0  # the miners can do it
    assert need_beyond_miners(ev("released", 0.0), floor) == 0.0
    assert gpu_reason(["economic", "4cp", "grid"], CAP) == "grid"
    assert gpu_reason(["economic", "site_limit"], CAP) is None


def test_caps_are_sent_acknowledged_and_complied_on_a_later_reading() -> None:
    s, out = gpu_step(TierState(), [need(200.0)], CAP, P, tier=2)
    assert [(x.device_id, x.limit_w) for x in sets(out)] == [("n1/gpu0", 550.0), ("n1/gpu1", 550.0)]
    assert [o.kind for o in outcomes(out)] == ["sent", "sent"]
    assert all(o.via == "nvml" and o.tier == 2 for o in outcomes(out))
    assert {o.device_id for o in out if isinstance(o, CommandInForce)} == {"n1/gpu0", "n1/gpu1"}
    assert "gpu_cap" in audits(out)
    s, out = acked(s, 100.5)
    assert [o.kind for o in outcomes(out)] == ["acknowledged", "acknowledged"]
    # A reading from before the acknowledgement does not count; one after it does.
    s, out = gpu_step(s, [Reading("n1/gpu0", 540.0, 100.4)], CAP, P)
    assert outcomes(out) == []
    s, out = gpu_step(
        s, [Reading("n1/gpu0", 540.0, 101.5), Reading("n1/gpu1", 640.0, 101.5)], CAP, P
    )
    (ok,) = outcomes(out, "complied")
    assert ok.device_id == "n1/gpu0" and ok.response_s == pytest.approx(1.5)
    s, out = gpu_step(s, [Tick(111.0)], CAP, P)  # past the deadline: gpu1 never came down
    assert [(o.device_id, o.kind) for o in outcomes(out)] == [("n1/gpu1", "failed")]


def test_the_same_need_again_sends_nothing_and_a_bigger_one_recaps() -> None:
    s, _ = gpu_step(TierState(), [need(200.0)], CAP, P)
    s, out = gpu_step(s, [need(201.0, at=101.0)], CAP, P)
    assert out == []
    s, out = gpu_step(s, [need(400.0, at=102.0)], CAP, P)
    assert [x.limit_w for x in sets(out)] == [450.0, 450.0]  # from the baseline, not the cap
    assert {x.command_id for x in sets(out)} == {"e1/gpu/2"}


def test_restored_to_the_limit_before_when_the_need_ends() -> None:
    slots = (SLOTS[0].__class__(0, "batch", 700.0, 200.0, 700.0, 690.0, 650.0, "n1"),)
    s, _ = gpu_step(TierState(), [GpuNeed("site", "e1", ("4cp",), 100.0, 100, 110, slots)], CAP, P)
    s, _ = acked(s, 100.5)
    s, out = gpu_step(s, [GpuNeed("site", "e1", ("4cp",), 0.0, 200, 210, ())], CAP, P)
    assert [(x.action, x.limit_w) for x in sets(out)] == [("gpu_restore", 690.0)]
    assert "gpu_restore" in audits(out)
    s, out = acked(s, 200.2)
    assert [(o.action, o.kind) for o in outcomes(out)] == [("gpu_restore", "acknowledged")]
    assert s.episodes == {}


def test_maximum_duration_restores_and_the_event_is_not_capped_again() -> None:
    s, _ = gpu_step(TierState(), [need(200.0)], CAP, P)
    s, _ = acked(s, 100.5)
    s, out = gpu_step(s, [Tick(699.0)], CAP, P)
    assert sets(out) == []
    s, out = gpu_step(s, [Tick(700.0)], CAP, P)
    assert [x.action for x in sets(out)] == ["gpu_restore", "gpu_restore"]
    s, _ = acked(s, 700.5)
    s, out = gpu_step(s, [need(300.0, at=701.0)], CAP, P)
    assert sets(out) == []
    s, out = gpu_step(s, [need(300.0, at=702.0, ev="e2")], CAP, P)  # a new event may
    assert len(sets(out)) == 2


def test_economic_and_site_limit_needs_are_refused_and_audited() -> None:
    s, out = gpu_step(TierState(), [need(200.0, ("economic", "site_limit"))], CAP, P)
    assert sets(out) == [] and audits(out) == ["gpu_caps_not_allowed"]


def test_a_refused_cap_fails_and_a_refused_restore_is_retried() -> None:
    s, out = gpu_step(TierState(), [need(200.0)], CAP, P)
    first = sets(out)[0]
    s, out = gpu_step(
        s, [Ack(first.device_id, first.command_id, 1, False, 100.1, "NVMLError")], CAP, P
    )
    assert [o.kind for o in outcomes(out)] == ["failed"]
    s, _ = gpu_step(s, [Ack("n1/gpu1", first.command_id, 1, True, 100.1)], CAP, P)
    s, out = gpu_step(s, [need(0.0, at=200.0)], CAP, P)
    # Both go back: a refused or unanswered set may still have taken effect.
    restore, other = sets(out)
    s, _ = gpu_step(s, [Ack(other.device_id, other.command_id, 1, True, 200.1)], CAP, P)
    s, out = gpu_step(s, [Ack(restore.device_id, restore.command_id, 1, False, 200.1)], CAP, P)
    assert [o.kind for o in outcomes(out)] == ["failed"]
    s, out = gpu_step(s, [Tick(201.2)], CAP, P)
    assert [(x.device_id, x.action, x.attempt) for x in sets(out)] == [
        (restore.device_id, "gpu_restore", 2)
    ]


def test_caps_left_by_a_previous_actuator_go_back_to_the_default_limit() -> None:
    rec = CommandInForce(
        site_id="site",
        device_id="n1/gpu1",
        command_id="e0/gpu/1",
        action="gpu_cap",
        power_limit_w=500.0,
        issued_at_s=0,
        deadline_s=10,
    )
    s, out = gpu_step(TierState(), [GpuRecover((rec,), SLOTS, 50.0)], CAP, P)
    assert [(x.device_id, x.action, x.limit_w) for x in sets(out)] == [
        ("n1/gpu1", "gpu_restore", 700.0)
    ]
    assert "gpu_restore" in audits(out)
