"""Lining a batch up with the next offset an agent expects (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.agents.continuity import Continuity, check_batch


def test_nothing_expected_yet_takes_the_batch_as_it_is() -> None:
    assert check_batch(None, [7, 8, 9]) == Continuity(drop=0, gap=None)


def test_a_batch_that_follows_on_is_taken_whole() -> None:
    assert check_batch(7, [7, 8, 9]) == Continuity(drop=0, gap=None)


def test_redelivered_offsets_after_a_rewind_are_dropped() -> None:
    assert check_batch(9, [5, 6, 7, 8, 9, 10]) == Continuity(drop=4, gap=None)
    assert check_batch(20, [5, 6]) == Continuity(drop=2, gap=None)


def test_a_skip_forward_is_a_gap_to_read_back() -> None:
    # the case the fault suite found: faust resumed a partition 20 frames ahead
    assert check_batch(46, [66, 67]) == Continuity(drop=0, gap=(46, 66))


def test_a_rewind_that_lands_past_the_expected_offset_leaves_a_gap() -> None:
    assert check_batch(10, [3, 4, 12]) == Continuity(drop=2, gap=(10, 12))


@given(
    expected=st.integers(0, 50),
    start=st.integers(0, 60),
    length=st.integers(0, 30),
)
def test_gap_plus_kept_messages_run_on_from_the_expected_offset(
    expected: int, start: int, length: int
) -> None:
    offsets = list(range(start, start + length))
    line = check_batch(expected, offsets)
    kept = offsets[line.drop :]
    assert all(o < expected for o in offsets[: line.drop])
    filled = list(range(*line.gap)) if line.gap else []
    run = filled + kept
    if run:
        assert run == list(range(expected, expected + len(run)))
