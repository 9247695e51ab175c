"""The recorded scenario and its offline truth, checked against facts derived by hand from
the site file (not from the code under test)."""

from __future__ import annotations

import time

import pytest

from schemas.registry import CONTRACTS
from schemas.validation import Limits, Rejection
from streams.faults.scenario import Scenario, aligned_start, build_scenario
from streams.faults.truth import compute_truth

SECONDS = 120
LATENESS = 5
# infra/sites/small.toml: 120 S21 + 150 S19jPro miners, (16 + 8) nodes x 8 GPUs, 3 meters.
READINGS_PER_SECOND = 120 + 150 + 24 * 8 + 3


@pytest.fixture(scope="module")
def scenario_now() -> tuple[Scenario, float]:
    now = time.time()
    return build_scenario(SECONDS, aligned_start(now, SECONDS)), now


def test_start_is_aligned_and_in_the_past() -> None:
    now = 1_795_710_000.0 + 437.0
    start = aligned_start(now, 240, margin_s=600)
    assert start % 900 == 0 and start + 240 + 600 <= now < start + 240 + 600 + 900


def test_same_inputs_give_the_same_bytes() -> None:
    a = build_scenario(20, 1_795_709_700)
    b = build_scenario(20, 1_795_709_700)
    assert [m.value for m in a.messages] == [m.value for m in b.messages]


def test_hostile_messages_are_rejected_and_valid_ones_accepted(
    scenario_now: tuple[Scenario, float],
) -> None:
    sc, now = scenario_now
    limits = Limits(now_s=now)
    site_ids = {sc.site.site_id}
    hostile = sc.hostile()
    assert len(hostile) == 5 * len(range(97 // 2, SECONDS, 97))
    for m in hostile:
        got = CONTRACTS[m.topic].decode(m.value, limits)
        unknown_site = not isinstance(got, Rejection) and got.site_id not in site_ids
        assert isinstance(got, Rejection) or unknown_site, (m.hostile, got)
    for m in sc.valid():
        got = CONTRACTS[m.topic].decode(m.value, limits)
        assert not isinstance(got, Rejection), (m.topic, got)


def test_truth_closes_every_second(
    scenario_now: tuple[Scenario, float],
) -> None:
    sc, _ = scenario_now
    truth = compute_truth(sc, LATENESS)
    # Seconds close by lateness while the stream runs, the last ones at its end (the agents
    # close them once complete).
    assert [p.ts_s for p in truth.powers] == list(range(sc.start_s, sc.start_s + SECONDS))
    assert all(p.readings == READINGS_PER_SECOND for p in truth.powers)
    assert all(p.late_readings == 0 and p.flags == [] for p in truth.powers)
    assert truth.readings == {"telemetry.asic.v1": 270 * SECONDS,
                              "telemetry.gpu.v1": 192 * SECONDS,
                              "telemetry.meter.v1": 3 * SECONDS}
    for p in truth.powers:  # contract 1.15 MW; surplus = contract - AI - overhead
        assert p.contract_w == 1.15e6
        assert p.surplus_w == pytest.approx(1.15e6 - p.ai_w - p.overhead_w)
        assert p.total_w == pytest.approx(p.ai_w + p.mining_w + p.overhead_w)


def test_truth_has_site_limit_curtailments_during_the_ai_spike(
    scenario_now: tuple[Scenario, float],
) -> None:
    sc, _ = scenario_now
    truth = compute_truth(sc, LATENESS)
    # The spike starts 60 s in; it pushes the site over 1.15 MW - 50 kW headroom.
    issued = [e for e in truth.curtailments if e.kind == "issued"]
    assert [e.issued_at_s - sc.start_s for e in issued] == [60.0]
    assert issued[0].reasons == ["site_limit"]
    spike = [p for p in truth.powers if p.ts_s - sc.start_s == 60][0]
    assert spike.total_w > 1.15e6 - 0.05e6
    assert [e.kind for e in truth.surplus][:1] == ["open"]
