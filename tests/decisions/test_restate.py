"""Late readings restate the closed seconds they change (streams.decisions.restate).

Stage 1 then stage 2 as the agents run them (``fold_partials``, ``process_site`` with a
restater), one batch per second of arrival. The truth is the same frames all on time: once
the restatements are applied, every second equals it.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from schemas.events import SitePower
from schemas.restatement import SitePowerRestatement
from schemas.telemetry import AsicFrame
from streams.agents.sites import SiteEntry
from streams.agents.stage2 import SiteStates, Stage2Config, process_site
from streams.decisions.fleet import fleet_roster
from streams.decisions.power import PartialState, index_site
from streams.decisions.restate import SiteRestater

from .conftest import T0, make_site
from .polling import PolledSource, device_site, poll

SITE = device_site(make_site(), asic_staleness_s=15.0)
ENTRY = SiteEntry(config=SITE, index=index_site(SITE), fleet=fleet_roster(SITE))
MONEY = ("ai_w", "mining_w", "overhead_w", "total_w", "hashrate_ths")


def run(
    arrivals: Sequence[Sequence[AsicFrame]],
    *,
    memory_s: int = 600,
    tail_s: int = 5,
    restart_at: int | None = None,
) -> tuple[dict[int, SitePower], list[SitePowerRestatement], int]:
    """Second k's batch is ``arrivals[k]``; then ``tail_s`` empty batches that still move the
    clock (a frame stamped in each closes what is left). Returns the seconds as the marts
    hold them (restatements applied), the restatements, and the readings not restated.
    ``restart_at``: the worker restarts before that batch (state kept, memory lost)."""
    pstate, states = PartialState(), SiteStates.fresh(SITE.site_id)
    restater = SiteRestater(index=ENTRY.index, memory_s=memory_s)
    published: dict[int, SitePower] = {}
    restated: list[SitePowerRestatement] = []
    unrestated = 0
    for k, frames in enumerate(arrivals):
        if k == restart_at:
            restater = SiteRestater(index=ENTRY.index, memory_s=memory_s)
        pstate, folded = fold(pstate, frames)
        states, out = process_site(
            states, folded, ENTRY, now_s=0.0, config=Stage2Config(tick="off"), restater=restater
        )
        published.update({p.ts_s: p for p in out.powers})
        for r in out.restatements:
            published[r.ts_s] = r.power
        restated.extend(out.restatements)
        unrestated += out.unrestated_readings
    return published, restated, unrestated


def fold(pstate: PartialState, frames: Sequence[AsicFrame]) -> tuple[PartialState, list]:  # type: ignore[type-arg]
    from streams.decisions.power import fold_partials

    pstate, folded = fold_partials(
        pstate, frames, {SITE.site_id: ENTRY.index}, source_partition="t:0", lateness_s=2
    )
    return pstate, folded.partials


def money(powers: dict[int, SitePower], upto: int) -> dict[int, tuple[float, ...]]:
    return {s: tuple(getattr(p, f) for f in MONEY) for s, p in powers.items() if s < upto}


RACKS = [PolledSource("rack-a", 3000.0, 5, 0, 2), PolledSource("rack-b", 2000.0, 5, 2, 3)]


def delay(frames: list[list[AsicFrame]], source: str, seconds: set[int], by: int) -> list[list]:  # type: ignore[type-arg]
    """``source``'s frames of ``seconds`` arrive ``by`` seconds later."""
    out: list[list[AsicFrame]] = [[] for _ in range(len(frames) + by)]
    for k, batch in enumerate(frames):
        for f in batch:
            late = f.source_id == source and k in seconds
            out[k + by if late else k].append(f)
    return out


def stepped() -> list[list[AsicFrame]]:
    """rack-b steps from 2,000 to 2,500 W a miner at its poll of 22 (back at 27)."""
    frames = poll(RACKS, T0, 60)
    frames[22] = [
        msgspec.structs.replace(f, power_w=[2500.0] * len(f.power_w))
        if f.source_id == "rack-b"
        else f
        for f in frames[22]
    ]
    return frames


def test_a_late_poll_restates_its_second_and_the_seconds_that_held_it() -> None:
    frames = stepped()
    truth, _, _ = run(frames)
    # rack-b's poll of second 22 (held through 26) arrives 10 s late, its second long closed.
    late, restated, unrestated = run(delay(frames, "rack-b", {22}, 10))
    assert unrestated == 0
    assert sorted(r.ts_s - T0 for r in restated) == [22, 23, 24, 25, 26]
    assert restated[0].late_readings == 3 and restated[1].late_readings == 0
    assert money(late, T0 + 55) == money(truth, T0 + 55)


def test_a_second_that_was_a_gap_is_filled_when_its_reading_arrives() -> None:
    # One source polled every 5 s; polls 10 and 15 are lost, so 5's reading holds through
    # 19 (15 s limit) and 20..24 are a gap until the poll of 20 arrives, 30 s late.
    rack = [PolledSource("rack-a", 3000.0, 5, 0, 2)]
    frames = poll(rack, T0, 80)
    truth, _, _ = run(frames)
    late_frames = delay(frames, "rack-a", {20}, 30)
    for k in (10, 15):
        late_frames[k] = []
    truth_gapped, _, _ = run([[] if k in (10, 15) else b for k, b in enumerate(frames)])
    late, restated, _ = run(late_frames)
    assert sorted(r.ts_s - T0 for r in restated) == [20, 21, 22, 23, 24]
    assert money(late, T0 + 70) == money(truth_gapped, T0 + 70)


def test_seconds_closed_after_a_late_poll_hold_it() -> None:
    # rack-b's poll of 22 (held through 26) arrives 2 s late, while 24..26 are still open:
    # they close holding it, with nothing to restate, as if it had come on time.
    frames = stepped()
    truth, _, _ = run(frames)
    late, restated, _ = run(delay(frames, "rack-b", {22}, 4))
    assert max(r.ts_s - T0 for r in restated) < 26
    assert money(late, T0 + 55) == money(truth, T0 + 55)


def test_a_redelivered_late_frame_counts_once() -> None:
    frames = poll(RACKS, T0, 40)
    arrivals = delay(frames, "rack-a", {20}, 8)
    again = [f for f in arrivals[28] if f.source_id == "rack-a" and f.seq == 20]
    arrivals[30] = [*arrivals[30], *again]
    truth, _, _ = run(frames)
    late, restated, _ = run(arrivals)
    assert money(late, T0 + 35) == money(truth, T0 + 35)
    assert all(r.late_readings in (0, 2) for r in restated)


def test_readings_older_than_the_memory_are_counted_not_restated() -> None:
    frames = poll(RACKS, T0, 120)
    late, restated, unrestated = run(delay(frames, "rack-a", {20}, 60), memory_s=30)
    assert restated == []
    assert unrestated == 2


def test_a_slow_start_restates_the_first_seconds() -> None:
    # The site's very first poll of rack-b (second 2, held through 6) arrives 6 s late: the
    # memory began with the site, so nothing before it was held and 2..4, closed by then,
    # are restated; 5 and 6 close after it came and hold it as published.
    frames = poll(RACKS, T0, 40)
    truth, _, _ = run(frames)
    late, restated, unrestated = run(delay(frames, "rack-b", {2}, 6))
    assert unrestated == 0
    assert sorted(r.ts_s - T0 for r in restated) == [2, 3, 4]
    assert money(late, T0 + 35) == money(truth, T0 + 35)


def test_after_a_restart_the_first_span_is_counted_not_restated() -> None:
    # A restarted worker's memory lacks what was held before it: a late poll within a
    # staleness span (15 s here) of the restart is counted, not restated from half the facts.
    frames = poll(RACKS, T0, 60)
    _, restated, unrestated = run(delay(frames, "rack-b", {32}, 4), restart_at=30)
    assert restated == []
    assert unrestated == 3
    _, restated, unrestated = run(delay(frames, "rack-b", {52}, 4), restart_at=30)
    assert unrestated == 0 and restated


@pytest.mark.parametrize("by", [3, 7, 25])
def test_any_delay_within_memory_gives_the_truth(by: int) -> None:
    frames = poll(RACKS, T0, 90)
    truth, _, _ = run(frames)
    late_secs = {s for s in range(20, 60) if s % 5 in (0, 2)}
    late, _, _ = run(delay(delay(frames, "rack-a", late_secs, by), "rack-b", late_secs, by))
    assert money(late, T0 + 85) == money(truth, T0 + 85)


def test_restatements_round_trip_their_contract() -> None:
    frames = poll(RACKS, T0, 40)
    _, restated, _ = run(delay(frames, "rack-b", {22}, 10))
    assert restated
    for r in restated:
        raw = msgspec.json.encode(r)
        assert msgspec.json.decode(raw, type=SitePowerRestatement) == r
