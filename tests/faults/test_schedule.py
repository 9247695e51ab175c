"""The fault schedule: counts, spacing, window, seeds, and refusals."""

from __future__ import annotations

from collections import Counter

import pytest

from streams.faults.schedule import FaultKind, plan_faults

CASES: list[tuple[str, dict[FaultKind, int], float, float]] = [
    ("short form", {"kill_agents": 3, "kill_sink": 3, "broker_restart": 1,
                    "stall_agents": 1}, 108.0, 5.0),
    ("long form", {"kill_agents": 10, "kill_sink": 10, "broker_restart": 2,
                   "stall_agents": 2}, 405.0, 5.0),
    ("just fits", {"kill_sink": 4}, 15.5, 5.0),
    ("one fault", {"broker_restart": 1}, 1.0, 5.0),
    ("zero gap", {"kill_agents": 5}, 1.0, 0.0),
]


@pytest.mark.parametrize(("name", "counts", "window", "gap"), CASES, ids=[c[0] for c in CASES])
def test_schedule_has_the_counts_spaced_inside_the_window(
    name: str, counts: dict[FaultKind, int], window: float, gap: float
) -> None:
    plan = plan_faults(3, window, counts, min_gap_s=gap, stall_s=15.0, down_s=(0.5, 3.0))
    assert Counter(f.kind for f in plan) == Counter({k: v for k, v in counts.items() if v})
    times = [f.at_s for f in plan]
    assert times == sorted(times)
    assert all(0.0 <= t < window for t in times)
    assert all(b - a >= gap - 1e-9 for a, b in zip(times, times[1:], strict=False))
    for f in plan:
        if f.kind == "stall_agents":
            assert f.down_s == 15.0
        else:
            assert 0.5 <= f.down_s <= 3.0


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    counts: dict[FaultKind, int] = {"kill_agents": 3, "kill_sink": 3}
    assert plan_faults(1, 100.0, counts) == plan_faults(1, 100.0, counts)
    assert plan_faults(1, 100.0, counts) != plan_faults(2, 100.0, counts)


def test_no_faults_is_an_empty_schedule() -> None:
    assert plan_faults(1, 0.0, {}) == []
    assert plan_faults(1, 10.0, {"kill_sink": 0}) == []


@pytest.mark.parametrize(
    ("counts", "window", "kwargs", "message"),
    [
        ({"kill_sink": 5}, 20.0, {}, "do not fit"),
        ({"kill_sink": 1}, 0.0, {}, "do not fit"),
        ({"reboot": 1}, 20.0, {}, "unknown fault kinds"),
        ({"kill_sink": -1}, 20.0, {}, "negative count"),
        ({"kill_sink": 1}, 20.0, {"down_s": (3.0, 1.0)}, "down_s"),
    ],
    ids=["too many for the window", "empty window", "unknown kind", "negative", "bad down range"],
)
def test_refusals_name_the_problem(counts: dict[FaultKind, int], window: float,
                                   kwargs: dict[str, tuple[float, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_faults(1, window, counts, **kwargs)  # type: ignore[arg-type]
