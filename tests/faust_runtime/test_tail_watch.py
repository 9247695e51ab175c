"""Seeking back partitions whose last frames faust never delivered (pure logic)."""

from __future__ import annotations

from streams.faust_runtime.tail_watch import TailWatch

GPU0 = ("telemetry.gpu.v1", 0)
METER0 = ("telemetry.meter.v1", 0)


def test_a_partition_behind_the_broker_for_stall_s_is_due_once_per_stall() -> None:
    w = TailWatch(stall_s=2.0)
    w.processed(METER0, 1, now=10.0)
    assert w.due({METER0: 4}, now=11.9) == []
    assert w.due({METER0: 4}, now=12.0) == [(METER0, 1)]
    assert w.due({METER0: 4}, now=13.0) == []  # the seek takes a fetch to show
    assert w.due({METER0: 4}, now=14.0) == [(METER0, 1)]


def test_progress_restarts_the_clock_and_a_caught_up_partition_is_never_due() -> None:
    w = TailWatch(stall_s=2.0)
    w.processed(GPU0, 5, now=0.0)
    w.processed(GPU0, 5, now=1.5)  # the same offset again: still stalled since 0
    w.processed(METER0, 4, now=0.0)
    assert w.due({GPU0: 9, METER0: 4}, now=2.0) == [(GPU0, 5)]
    w.processed(GPU0, 9, now=2.5)
    assert w.due({GPU0: 9, METER0: 4}, now=10.0) == []


def test_unknown_high_watermarks_and_forgotten_partitions_are_left_alone() -> None:
    w = TailWatch(stall_s=1.0)
    w.processed(GPU0, 3, now=0.0)
    w.processed(METER0, None, now=0.0)  # no state yet: nothing to expect
    assert w.watched() == [GPU0]
    assert w.due({GPU0: None}, now=5.0) == []
    w.forget()
    assert w.due({GPU0: 10}, now=10.0) == []


def test_while_stage_1_is_busy_a_partition_may_wait_its_turn_longer() -> None:
    # Working through a backlog faust pauses fetching while the stream's buffer is full.
    w = TailWatch(stall_s=2.0, busy_stall_s=20.0)
    w.processed(METER0, 11, now=0.0)
    assert w.due({METER0: 23}, now=5.0, busy=True) == []
    assert w.due({METER0: 23}, now=20.0, busy=True) == [(METER0, 11)]


def test_an_assigned_partition_that_delivered_nothing_is_watched_from_its_offset() -> None:
    # faust can drop a partition's first fetch after an assignment: nothing was processed,
    # so only the assignment says the partition is ours and what it should deliver next.
    w = TailWatch(stall_s=2.0)
    w.processed(GPU0, 7, now=0.0)
    assert w.unwatched([GPU0, METER0]) == [METER0]
    w.assigned(METER0, 3, now=1.0)
    w.assigned(GPU0, 1, now=1.0)  # already watched: a processed batch knows better
    assert w.unwatched([GPU0, METER0]) == []
    assert w.due({GPU0: 7, METER0: 5}, now=2.9) == []
    assert w.due({GPU0: 7, METER0: 5}, now=3.0) == [(METER0, 3)]
    w.processed(METER0, 5, now=3.5)  # delivered after the seek: caught up
    assert w.due({GPU0: 7, METER0: 5}, now=9.0) == []
