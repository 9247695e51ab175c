"""Readings at any cadence: each source's reading holds until its next one, up to the
staleness of its kind (docs/cadence.md)."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import SitePowerPartial, SourceReading
from schemas.site import MaxStaleness, SiteConfig
from streams.agents.messages import decode_state, encode
from streams.decisions.power import (
    FLAG_GAP,
    FLAG_STALE_SOURCES,
    CombineState,
    PartialState,
    SiteIndex,
    close_all,
    combine,
    fold_partials,
    index_site,
)

from .conftest import T0, make_site
from .polling import PolledSource, device_site, mining_wh, poll, run


@pytest.fixture
def devices() -> SiteIndex:
    """The test site without meters, ASIC readings holding 15 s (the default)."""
    return index_site(device_site(make_site(), asic_staleness_s=15.0))


def _mining_by_second(index: SiteIndex, frames_by_second: list[list[object]]) -> dict[int, float]:
    return {p.ts_s - T0: p.mining_w for p in run(index, frames_by_second)}  # type: ignore[arg-type]


def test_a_5_s_source_holds_for_the_seconds_between_its_polls(devices: SiteIndex) -> None:
    rack = PolledSource("rack-1", 3000.0, period_s=5, miners=2)
    powers = run(devices, poll([rack], T0, 11))
    # Polled at 0, 5, 10: every second 0..10 carries the 6 kW, held in 1-4 and 6-9.
    assert [p.ts_s - T0 for p in powers] == list(range(11))
    assert all(p.mining_w == 6000.0 for p in powers)
    assert [p.held_sources for p in powers] == [0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0]
    assert [p.readings for p in powers] == [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2]
    assert [p.held_readings for p in powers] == [0, 2, 2, 2, 2, 0, 2, 2, 2, 2, 0]
    assert all(p.stale_sources == 0 for p in powers)
    # The stamp of the reading behind mining_w: what curtailment compliance waits on.
    assert [p.mining_reading_s for p in powers] == [T0 + 5.0 * (k // 5) for k in range(11)]


@pytest.mark.parametrize(
    ("missed", "expected"),
    [
        # One missed poll (second 5): the reading of 0 still holds at 5..9 (< 15 s).
        ({5}, {s: 3000.0 for s in range(21)}),
        # Polls 5, 10 and 15 missed: 0's reading holds 0..14; 15..19 nothing is fresh, a gap
        # (no SitePower, never zero); 20 is fresh again.
        ({5, 10, 15}, {**{s: 3000.0 for s in range(15)}, 20: 3000.0}),
    ],
)
def test_staleness_table(devices: SiteIndex, missed: set[int], expected: dict[int, float]) -> None:
    rack = PolledSource("rack-1", 3000.0, period_s=5)
    lost = frozenset(("rack-1", k) for k in missed)
    assert _mining_by_second(devices, poll([rack], T0, 21, missed=lost)) == expected  # type: ignore[arg-type]


def test_a_stale_source_is_counted_and_left_out_while_others_report(devices: SiteIndex) -> None:
    slow = PolledSource("rack-slow", 1000.0, period_s=5)
    fast = PolledSource("rack-fast", 2000.0, period_s=1)
    lost = frozenset(("rack-slow", k) for k in (5, 10, 15))
    state, out = CombineState(), []
    pstate = PartialState()
    sites = {"s1": devices}
    gaps = []
    for frames in poll([slow, fast], T0, 21, missed=lost):
        pstate, folded = fold_partials(pstate, frames, sites, source_partition="t:0")
        state, combined = combine(state, folded.partials, sites, now_s=0.0)
        out.extend(combined.powers)
        gaps.extend(combined.gaps)
    by_s = {p.ts_s - T0: p for p in out}
    assert not gaps
    assert by_s[14].mining_w == 3000.0 and by_s[14].stale_sources == 0
    for s in range(15, 18):  # combine closes up to newest - lateness (20 - 2)
        assert by_s[s].mining_w == 2000.0
        assert by_s[s].stale_sources == 1
        assert FLAG_STALE_SOURCES in by_s[s].flags


def test_a_gap_then_fresh_data_flags_the_second_after(devices: SiteIndex) -> None:
    rack = PolledSource("rack-1", 3000.0, period_s=5)
    lost = frozenset(("rack-1", k) for k in (5, 10, 15))
    state, pstate = CombineState(), PartialState()
    sites = {"s1": devices}
    gaps, powers = [], []
    for frames in [*poll([rack], T0, 26, missed=lost)]:
        pstate, folded = fold_partials(pstate, frames, sites, source_partition="t:0")
        state, combined = combine(state, folded.partials, sites, now_s=0.0)
        gaps.extend(combined.gaps)
        powers.extend(combined.powers)
    # Reported as the seconds close (in pieces), the gaps cover exactly 15..19.
    covered = [s - T0 for g in gaps for s in range(g.start_s, g.end_s)]
    assert covered == list(range(15, 20))
    assert [p.ts_s - T0 for p in powers if FLAG_GAP in p.flags] == [20]


def _partial(ts: int, w: float, frame_ts: float, part: str = "t:0") -> SitePowerPartial:
    reading = SourceReading(ts_s=frame_ts, mining_w=w, mining_reported_w=w, readings=1)
    return SitePowerPartial(
        site_id="s1",
        ts_s=ts,
        source_partition=part,
        mining_w=w,
        mining_reported_w=w,
        readings=1,
        frames=1,
        sources={"asic:rack-1": reading},
    )


def test_out_of_order_frames_within_lateness_hold_in_stamp_order(devices: SiteIndex) -> None:
    sites = {"s1": devices}
    # Second 5 (7 kW) arrives before second 4 (4 kW); both while open.
    batches = [[_partial(T0, 1000.0, T0)], [_partial(T0 + 5, 7000.0, T0 + 5)]]
    batches += [[_partial(T0 + 4, 4000.0, T0 + 4)], [_partial(T0 + 9, 9000.0, T0 + 9)]]
    state, powers = CombineState(), []
    for batch in batches:
        state, out = combine(state, batch, sites, now_s=0.0, config=None)
        powers.extend(out.powers)
    state, out = close_all(state, sites, now_s=0.0)
    powers.extend(out.powers)
    got = {p.ts_s - T0: p.mining_w for p in powers}
    assert got == {0: 1000.0, 1: 1000.0, 2: 1000.0, 3: 1000.0, 4: 4000.0, 5: 7000.0} | {
        s: 7000.0 for s in range(6, 9)
    } | {9: 9000.0}


def test_two_frames_of_one_poll_add_and_a_later_poll_in_the_second_replaces(
    devices: SiteIndex,
) -> None:
    a, b = (PolledSource(f"rack-{i}", 1000.0 * (i + 1), 1) for i in range(2))
    (frames,) = poll([a, b], T0, 1)
    same_poll = [
        msgspec.structs.replace(f, source_id="rack-x", seq=i) for i, f in enumerate(frames)
    ]
    later = msgspec.structs.replace(frames[0], source_id="rack-x", ts_s=T0 + 0.5, seq=9)
    sites = {"s1": devices}
    _, out = fold_partials(PartialState(), same_poll, sites, source_partition="t:0")
    assert out.partials[0].sources["asic:rack-x"].mining_w == 3000.0
    _, out = fold_partials(PartialState(), [*same_poll, later], sites, source_partition="t:0")
    assert out.partials[0].sources["asic:rack-x"].mining_w == 1000.0
    assert out.partials[0].sources["asic:rack-x"].readings == 1


def test_a_partial_without_sources_counts_for_its_second_only(devices: SiteIndex) -> None:
    old = SitePowerPartial(
        site_id="s1", ts_s=T0, source_partition="t:0", mining_w=5000.0, readings=1, frames=1
    )
    state, _ = combine(CombineState(), [old], {"s1": devices}, now_s=0.0)
    _, out = close_all(state, {"s1": devices}, now_s=0.0)
    assert [(p.ts_s, p.mining_w, p.held_sources) for p in out.powers] == [(T0, 5000.0, 0)]


def test_the_held_table_survives_a_restart() -> None:
    """A worker that restarts from the saved state closes the same seconds as one that ran
    on: the held readings are in ``CombineState``, which the agents save to faust tables."""
    rack = PolledSource("rack-1", 3000.0, period_s=60, phase_s=3)
    frames = poll([rack], T0, 130)
    idx = {"s1": index_site(device_site(make_site(), asic_staleness_s=180.0))}
    pstate, cstate = PartialState(), CombineState()
    straight, restarted = [], []
    for k, batch in enumerate(frames):
        pstate, folded = fold_partials(pstate, batch, idx, source_partition="t:0")
        if k == 70:
            assert cstate.sites["s1"].held  # the poll of second 3, held since
            cstate = decode_state(encode(cstate), CombineState)
        cstate, out = combine(cstate, folded.partials, idx, now_s=0.0)
        restarted.extend(out.powers)
    pstate2, cstate2 = PartialState(), CombineState()
    for batch in frames:
        pstate2, folded = fold_partials(pstate2, batch, idx, source_partition="t:0")
        cstate2, out = combine(cstate2, folded.partials, idx, now_s=0.0)
        straight.extend(out.powers)
    assert restarted == straight
    assert [p.ts_s - T0 for p in straight] == list(range(3, 121))
    assert all(p.mining_w == 3000.0 for p in straight)


def test_site_files_without_staleness_validate_with_the_defaults() -> None:
    raw = msgspec.to_builtins(make_site())
    del raw["max_staleness"]
    site = msgspec.convert(raw, SiteConfig)
    assert site.max_staleness == MaxStaleness(gpu_s=3.0, asic_s=15.0, meter_s=3.0)
    with pytest.raises(msgspec.ValidationError, match="asic_s"):
        msgspec.convert({**raw, "max_staleness": {"asic_s": 0.5}}, SiteConfig)


@settings(max_examples=40, deadline=None)
@given(
    racks=st.lists(
        st.tuples(
            st.floats(min_value=100.0, max_value=5000.0),
            st.sampled_from([1, 5, 60]),
            st.integers(min_value=0, max_value=59),
        ),
        min_size=1,
        max_size=4,
    ),
    seconds=st.integers(min_value=60, max_value=400),
    cut=st.integers(min_value=0, max_value=120),
    jitter=st.floats(min_value=0.0, max_value=0.9),
)
def test_energy_by_use_does_not_depend_on_the_polling_period(
    racks: list[tuple[float, int, int]], seconds: int, cut: int, jitter: float
) -> None:
    """Mining energy of a constant-per-poll load over a window of the closed seconds equals
    the 1 s truth within what sample-and-hold can promise: a source is missing only before
    its first poll (fewer than one period at the window's start) and after its last poll
    once input ends (fewer than one period at the end), so
    |E - truth| < sum over sources of 2 x period x W."""
    index = index_site(device_site(make_site(), asic_staleness_s=180.0))
    sources = [
        PolledSource(f"rack-{i}", w, period, phase % period)
        for i, (w, period, phase) in enumerate(racks)
    ]
    powers = run(index, poll(sources, T0, cut + seconds, jitter_s=jitter))
    energy = mining_wh(powers, T0 + cut, seconds)
    truth = math.fsum(s.power_w for s in sources) * seconds / 3600
    bound = math.fsum(2 * s.period_s * s.power_w for s in sources) / 3600
    assert abs(energy - truth) <= bound + 1e-6
    # And away from the ends of the input it is exact.
    if cut >= 60 and seconds > 120:
        assert mining_wh(powers, T0 + cut, seconds - 60) == pytest.approx(
            math.fsum(s.power_w for s in sources) * (seconds - 60) / 3600
        )
