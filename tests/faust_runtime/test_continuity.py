"""Lining a batch up with the next offset an agent expects (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.faust_runtime.continuity import check_batch


def offsets_kept(expected: int | None, offsets: list[int]) -> list[int]:
    return [offsets[i] for i in check_batch(expected, offsets).keep]


def test_nothing_expected_yet_takes_the_batch_as_it_is() -> None:
    line = check_batch(None, [7, 8, 9])
    assert (offsets_kept(None, [7, 8, 9]), line.again, line.gaps) == ([7, 8, 9], [], [])


def test_a_batch_that_follows_on_is_taken_whole() -> None:
    assert check_batch(7, [7, 8, 9]).gaps == []
    assert offsets_kept(7, [7, 8, 9]) == [7, 8, 9]


def test_redelivered_offsets_after_a_rewind_are_set_apart() -> None:
    line = check_batch(9, [5, 6, 7, 8, 9, 10])
    assert line.again == [0, 1, 2, 3] and offsets_kept(9, [5, 6, 7, 8, 9, 10]) == [9, 10]
    assert check_batch(20, [5, 6]).keep == [] and check_batch(20, [5, 6]).gaps == []


def test_a_skip_forward_is_a_gap_to_read_back() -> None:
    # the first case the fault suite found: faust resumed a partition 20 frames ahead
    assert check_batch(46, [66, 67]).gaps == [(46, 66)]


def test_a_hole_inside_the_batch_is_a_gap_too() -> None:
    # the second: one frame missing between two fetches that ended up in one batch
    assert check_batch(450, [450, 452, 453]).gaps == [(451, 452)]
    assert check_batch(None, [450, 452, 453]).gaps == [(451, 452)]


def test_a_rewind_inside_the_batch_is_put_in_order_once() -> None:
    offsets = [450, 451, 452, 448, 449, 450, 451, 452, 453]
    assert offsets_kept(448, offsets) == [448, 449, 450, 451, 452, 453]
    assert check_batch(448, offsets).gaps == []


@given(
    expected=st.none() | st.integers(0, 50),
    offsets=st.lists(st.integers(0, 80), max_size=40),
)
def test_gaps_and_kept_offsets_run_on_without_a_hole(
    expected: int | None, offsets: list[int]
) -> None:
    line = check_batch(expected, offsets)
    kept = [offsets[i] for i in line.keep]
    assert kept == sorted(set(kept))  # in order, each offset once
    assert {o for o in offsets if expected is None or o >= expected} == set(kept)
    assert all(expected is not None and offsets[i] < expected for i in line.again)
    run = sorted(kept + [o for a, b in line.gaps for o in range(a, b)])
    if run:
        start = expected if expected is not None else run[0]
        assert run == list(range(start, start + len(run)))
