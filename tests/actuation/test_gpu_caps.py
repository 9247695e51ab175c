"""GPU caps: the policy's bounds (pure), and the node agent against a fake NVML."""

from __future__ import annotations

import pytest

from streams.actuation.gpu_caps import CapPolicy, GpuCapAgent, GpuSlot, floor_w, plan_caps
from tests.actuation.fake_nvml import Card, FakeNvml, NVMLError

P = CapPolicy(min_cap_frac=0.6, max_duration_s=100, tenants=frozenset({"batch"}))


def slot(i: int, tenant: str = "batch", power: float = 650.0) -> GpuSlot:
    return GpuSlot(i, tenant, 700.0, 200.0, 700.0, 700.0, power)


def test_caps_spread_over_allowed_gpus_and_never_below_the_floor() -> None:
    plan = plan_caps([slot(0), slot(1), slot(2, "inference")], 100.0, "grid", P)
    assert [c.index for c in plan.caps] == [0, 1]
    assert plan.expected_free_w == pytest.approx(100.0)
    assert all(c.limit_w == pytest.approx(600.0) for c in plan.caps)
    assert plan.refused == ("gpu2: tenant 'inference' not cappable",)
    big = plan_caps([slot(0), slot(1)], 10_000.0, "4cp", P)
    assert all(c.limit_w == floor_w(slot(0), P) == 420.0 for c in big.caps)
    assert big.expected_free_w == pytest.approx(2 * (650 - 420))


@pytest.mark.parametrize("reason", ["economic", "site_limit"])
def test_only_grid_emergencies_and_4cp_may_cap_gpus(reason: str) -> None:
    plan = plan_caps([slot(0)], 100.0, reason, P)
    assert plan.caps == () and "does not allow" in plan.refused[0]


def test_agent_reads_sets_and_measures_through_nvml() -> None:
    nvml = FakeNvml([Card(limit_mw=690_000), Card(), Card()])
    agent = GpuCapAgent(nvml, "node-1", {0: "batch", 1: "batch", 2: "serving"})
    slots = agent.slots()
    assert [(s.node, s.tenant, s.limit_w, s.power_w) for s in slots] == [
        ("node-1", "batch", 690.0, 650.0),
        ("node-1", "batch", 700.0, 650.0),
        ("node-1", "serving", 700.0, 650.0),
    ]
    plan = plan_caps(slots, 200.0, "grid", P)
    assert {(c.node, c.index) for c in plan.caps} == {("node-1", 0), ("node-1", 1)}
    assert agent.set_limit(0, plan.caps[0].limit_w) == plan.caps[0].limit_w
    assert agent.power_w(0) == plan.caps[0].limit_w  # the fake draws at most its limit
    with pytest.raises(NVMLError):
        agent.set_limit(1, 100.0)  # below the card's NVML minimum
