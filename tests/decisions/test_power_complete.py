"""Closing a second as soon as it is complete (``CombineConfig.close_complete``)."""

from __future__ import annotations

from schemas.events import SitePowerPartial
from streams.decisions.power import (
    CombineConfig,
    CombineState,
    PartialState,
    SiteIndex,
    close_all,
    combine,
    fold_partials,
    refresh_liveness,
)

from .conftest import T0
from .helpers import gpus
from .sparse_complete import measure

CFG = CombineConfig(lateness_s=2, partition_watermarks=True, close_complete=True)


def partial(sec: int, part: str, frames: int) -> SitePowerPartial:
    return SitePowerPartial(
        site_id="s1", ts_s=T0 + sec, source_partition=part, readings=frames, frames=frames
    )


def run(
    index: SiteIndex, batches: list[list[tuple[int, str, int]]], cfg: CombineConfig = CFG
) -> list[list[int]]:
    """Seconds emitted after each batch of (second, partition, frames) partials."""
    state = CombineState()
    emitted = []
    for batch in batches:
        parts = [partial(s, p, n) for s, p, n in batch]
        state, out = combine(state, parts, {"s1": index}, now_s=0.0, config=cfg)
        emitted.append([p.ts_s - T0 for p in out.powers])
    return emitted


WARM = [(s, p, n) for s in range(4) for p, n in (("a", 2), ("b", 1))]
"""Seconds 0..3 from partitions a (2 frames) and b (1): 0 closes by lateness (newest 3 - 2),
which teaches what to expect; 1 to 3 are then complete."""


def test_a_complete_second_closes_without_waiting(index: SiteIndex) -> None:
    # Second 2 is complete once a has its 2 frames and b its 1, with nothing newer.
    got = run(index, [WARM, [(4, "a", 1)], [(4, "a", 2)], [(4, "b", 1)]])
    assert got == [[0, 1, 2, 3], [], [], [4]]


def test_without_close_complete_the_second_waits_for_lateness(index: SiteIndex) -> None:
    cfg = CombineConfig(lateness_s=2, partition_watermarks=True)
    got = run(index, [WARM, [(4, "a", 2), (4, "b", 1)], [(5, "a", 2), (5, "b", 1)]], cfg)
    assert got == [[0], [1], [2]]


def test_a_missing_partition_holds_the_second(index: SiteIndex) -> None:
    got = run(index, [WARM, [(4, "a", 2)], [(5, "a", 2)], [(4, "b", 1)]])
    assert got == [[0, 1, 2, 3], [], [], [4]]


def test_fewer_frames_wait_for_lateness_then_become_the_expectation(index: SiteIndex) -> None:
    # One of b's two sources falls silent at second 4. With a window of one second, the
    # expectation is the last closed second's.
    warm = [(s, p, n) for s in range(4) for p, n in (("a", 2), ("b", 2))]
    cfg = CombineConfig(
        lateness_s=2, partition_watermarks=True, close_complete=True, complete_window_s=1
    )
    got = run(
        index,
        [
            warm,
            [(4, "a", 2), (4, "b", 1)],
            [(5, "a", 2), (5, "b", 1)],
            [(6, "a", 2)],
            [(7, "a", 2), (7, "b", 1)],
            [(6, "b", 1)],
        ],
        cfg,
    )
    # 4 waits for lateness (closed when 7 arrives); from then on b's 1 frame is complete, so
    # 5 closes with it, and 6 and 7 as soon as b's partial for 6 comes.
    assert got == [[0, 1, 2, 3], [], [], [], [4, 5], [6, 7]]


def test_within_the_window_fewer_frames_keep_waiting_for_lateness(index: SiteIndex) -> None:
    # The same silent source with the default window: b is expected to send 2 frames for
    # 120 s, so its seconds of 1 frame close by lateness, never on b's partial alone.
    warm = [(s, p, n) for s in range(4) for p, n in (("a", 2), ("b", 2))]
    later = [[(s, "a", 2), (s, "b", 1)] for s in range(4, 8)]
    got = run(index, [warm, *later])
    assert got == [[0, 1, 2, 3], [], [], [], [4]]  # 4 closes when 7 arrives (lateness 2)


def test_sources_at_uneven_phases_lose_no_reading_to_an_early_close() -> None:
    """Four racks polled every 5 s at phases 0, 0, 0 and 2 s, frames arriving one by one:
    a partition sends 3 frames one second and 1 two seconds later. Expecting the last
    closed second's count closed the 3-frame seconds on their first frame and counted the
    other two late (2,380 of 4,800 readings over 600 s); the window's most loses none."""
    assert measure([0, 0, 0, 2], 1)[:2] == (2380, 4800)
    assert measure([0, 0, 0, 2], CFG.complete_window_s)[:2] == (0, 4800)
    assert measure([0, 0, 1, 3], CFG.complete_window_s)[0] == 0


def test_nothing_closes_complete_before_a_second_closed_the_usual_way(
    index: SiteIndex,
) -> None:
    assert run(index, [[(0, "a", 2), (0, "b", 1)], [(1, "a", 2), (1, "b", 1)]]) == [[], []]


def test_partials_without_a_frame_count_never_close_early(index: SiteIndex) -> None:
    warm = [(s, p, 0) for s in range(4) for p in ("a", "b")]
    assert run(index, [warm, [(4, "a", 0), (4, "b", 0)]]) == [[0], [1]]


def test_fold_counts_distinct_frames(index: SiteIndex) -> None:
    frames = [gpus(T0 + 0.1, "n1", [1.0], seq=1), gpus(T0 + 0.1, "n1", [1.0], seq=1)]
    frames.append(gpus(T0 + 0.2, "n2", [1.0], seq=1))
    _, out = fold_partials(PartialState(), frames, {"s1": index}, source_partition="t:0")
    assert [p.frames for p in out.partials] == [2]
    assert out.duplicate_frames == 1


def test_a_gap_before_a_complete_second_closes_with_it(index: SiteIndex) -> None:
    state = CombineState()
    parts = [partial(s, p, n) for s, p, n in WARM]
    state, _ = combine(state, parts, {"s1": index}, now_s=0.0, config=CFG)
    # Nothing for 4 and 5; 6 comes in full: 4 and 5 are reported as a gap at once.
    held = [partial(6, "a", 2)]
    state, out = combine(state, held, {"s1": index}, now_s=0.0, config=CFG)
    assert out.powers == [] and out.gaps == []
    state, out = combine(state, [partial(6, "b", 1)], {"s1": index}, now_s=0.0, config=CFG)
    assert [p.ts_s - T0 for p in out.powers] == [6]
    assert [(g.start_s - T0, g.end_s - T0) for g in out.gaps] == [(4, 6)]
    assert "gap" in out.powers[0].flags


def test_close_all_closes_every_open_second_at_the_end(index: SiteIndex) -> None:
    cfg = CombineConfig(lateness_s=2)
    state, out = combine(
        CombineState(),
        [partial(s, "a", 1) for s in (0, 1, 2, 4)],
        {"s1": index},
        now_s=0.0,
        config=cfg,
    )
    assert [p.ts_s - T0 for p in out.powers] == [0, 1]
    state, out = close_all(state, {"s1": index}, now_s=0.0, config=cfg)
    assert [p.ts_s - T0 for p in out.powers] == [2, 4]
    assert [(g.start_s - T0, g.end_s - T0) for g in out.gaps] == [(3, 4)]
    assert state.sites["s1"].open == {}


def test_after_the_worker_was_away_a_lagging_partition_still_holds_its_seconds(
    index: SiteIndex,
) -> None:
    """b lags 60 s of event time behind a (a backlog) and was last heard 40 s of wall clock
    ago because this worker was stopped: without a refresh b counts as dead and a's seconds
    close without it; after ``refresh_liveness`` they wait for b."""
    cfg = CombineConfig(
        lateness_s=2, partition_watermarks=True, close_complete=True, partition_idle_wall_s=30
    )

    def after_pause(refresh: bool) -> list[int]:
        state = CombineState()
        warm = [partial(s, p, n) for s, p, n in WARM]
        state, _ = combine(state, warm, {"s1": index}, now_s=1000.0, config=cfg)
        state, _ = combine(
            state,
            [partial(s, "a", 2) for s in range(4, 64)],
            {"s1": index},
            now_s=1001.0,
            config=cfg,
        )
        if refresh:
            refresh_liveness(state, 1041.0)
        state, out = combine(state, [partial(64, "a", 2)], {"s1": index}, now_s=1041.0, config=cfg)
        return [p.ts_s - T0 for p in out.powers]

    assert after_pause(refresh=False)[:1] == [4]  # closed without b: the failure
    assert after_pause(refresh=True) == []


def test_a_partition_first_heard_late_holds_the_next_seconds(index: SiteIndex) -> None:
    # c's first partial is for second 2, closed already (a rebalance moved c to a worker
    # that was still catching up): late, but c is a source from now on, so second 4 waits
    # for it instead of closing on a and b alone and making every c partial late again.
    got = run(index, [WARM, [(2, "c", 1)], [(4, "a", 2), (4, "b", 1)], [(4, "c", 1)]])
    assert got == [[0, 1, 2, 3], [], [], [4]]
