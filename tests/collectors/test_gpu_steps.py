"""Per-GPU counter steps between two polls of one source (streams/collectors/gpu_steps.py)."""

from __future__ import annotations

from schemas.telemetry import GpuFrame
from streams.collectors.gpu_steps import (
    CounterSteps,
    GpuPoll,
    StepTracker,
    counter_steps,
    frame_poll,
    with_steps,
)

NONE3 = ([None], [None], [None])


def poll(ts: float, gpus: dict[str, tuple[int | None, float]]) -> GpuPoll:
    """A poll of ``{key: (counter mJ, power W)}`` in the dict's order."""
    return GpuPoll(
        ts_s=ts,
        keys=list(gpus),
        energy_mj=[e for e, _ in gpus.values()],
        power_w=[p for _, p in gpus.values()],
    )


def cols(s: CounterSteps) -> tuple[list[int | None], list[float | None], list[float | None]]:
    return s.energy_step_mj, s.step_s, s.step_power_w


def test_first_poll_has_no_step() -> None:
    s = counter_steps(None, poll(10.0, {"a": (100, 50.0), "b": (7, 1.0)}))
    assert cols(s) == ([None, None], [None, None], [None, None])
    assert not s.any


def test_step_is_the_counter_difference_the_span_and_the_earlier_power() -> None:
    prev = poll(10.0, {"a": (1_000, 300.0), "b": (5_000, 100.0)})
    cur = poll(12.5, {"a": (751_000, 600.0), "b": (5_000, 90.0)})
    s = counter_steps(prev, cur)
    assert cols(s) == ([750_000, 0], [2.5, 2.5], [300.0, 100.0])
    assert s.any


def test_gpus_are_matched_by_key_not_position() -> None:
    prev = poll(0.0, {"a": (10, 1.0), "b": (20, 2.0)})
    cur = poll(1.0, {"b": (25, 3.0), "a": (11, 4.0)})
    assert cols(counter_steps(prev, cur)) == ([5, 1], [1.0, 1.0], [2.0, 1.0])


def test_a_gpu_that_joined_has_no_step_and_one_that_left_is_ignored() -> None:
    prev = poll(0.0, {"a": (10, 1.0), "gone": (99, 9.0)})
    cur = poll(1.0, {"a": (15, 2.0), "new": (1_000, 5.0)})
    assert cols(counter_steps(prev, cur)) == ([5, None], [1.0, None], [1.0, None])


def test_a_counter_reset_has_no_step() -> None:
    prev = poll(0.0, {"a": (9_000_000, 400.0), "b": (10, 1.0)})
    cur = poll(1.0, {"a": (300, 400.0), "b": (12, 1.0)})
    assert cols(counter_steps(prev, cur)) == ([None, 2], [None, 1.0], [None, 1.0])


def test_a_missing_counter_in_either_poll_has_no_step() -> None:
    prev = poll(0.0, {"a": (None, 1.0), "b": (10, 1.0)})
    cur = poll(1.0, {"a": (5, 1.0), "b": (None, 1.0)})
    s = counter_steps(prev, cur)
    assert cols(s) == ([None, None], [None, None], [None, None]) and not s.any


def test_a_poll_not_after_the_previous_one_has_no_step() -> None:
    prev = poll(5.0, {"a": (10, 1.0)})
    assert cols(counter_steps(prev, poll(5.0, {"a": (20, 1.0)}))) == NONE3
    assert cols(counter_steps(prev, poll(4.0, {"a": (20, 1.0)}))) == NONE3


def test_tracker_keeps_each_source_apart_and_steps_from_the_latest_poll() -> None:
    t = StepTracker()
    assert not t.step("n1", poll(0.0, {"g0": (100, 10.0)})).any
    assert not t.step("n2", poll(0.0, {"g0": (5_000, 20.0)})).any
    assert cols(t.step("n1", poll(1.0, {"g0": (150, 11.0)}))) == ([50], [1.0], [10.0])
    assert cols(t.step("n2", poll(2.0, {"g0": (5_100, 21.0)}))) == ([100], [2.0], [20.0])
    # A reset has no step, but the next poll steps from the reset counter.
    assert cols(t.step("n1", poll(2.0, {"g0": (3, 12.0)}))) == NONE3
    assert cols(t.step("n1", poll(3.0, {"g0": (8, 13.0)}))) == ([5], [1.0], [12.0])


def _frame(ts: float, source: str, energy: list[int | None], power: list[float]) -> GpuFrame:
    n = len(power)
    return GpuFrame(
        site_id="s",
        source_id=source,
        ts_s=ts,
        seq=0,
        node_id=["node"] * n,
        gpu_index=list(range(n)),
        power_w=power,
        energy_mj=energy,
    )


def test_frames_key_gpus_by_node_and_index() -> None:
    f = _frame(1.0, "rack", [1, None], [2.0, 3.0])
    p = frame_poll(f)
    assert (p.ts_s, list(p.keys), list(p.energy_mj)) == (1.0, [("node", 0), ("node", 1)], [1, None])


def test_a_frame_without_any_step_leaves_the_columns_out() -> None:
    f = _frame(1.0, "r", [1, 2], [1.0, 1.0])
    assert with_steps(f, CounterSteps([None, None], [None, None], [None, None])) is f
    t = StepTracker()
    first = t.frame(f)
    assert (first.energy_step_mj, first.step_s, first.step_power_w) == (None, None, None)
    second = t.frame(_frame(3.0, "r", [11, None], [5.0, 5.0]))
    assert second.energy_step_mj == [10, None]
    assert second.step_s == [2.0, None]
    assert second.step_power_w == [1.0, None]
    assert second.power_w == [5.0, 5.0]  # the rest of the frame is untouched
