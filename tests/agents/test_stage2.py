"""Stage 2 without Kafka: partials of several partitions, input order, ticks, hashprice."""

from __future__ import annotations

import pytest

from schemas.events import SitePowerPartial
from schemas.grid import PriceSignal
from streams.agents.messages import PriceIn, TickIn
from streams.agents.sites import SiteEntry
from streams.agents.stage2 import SiteStates, Stage2Config, Stage2Item, TickClock, process_site
from streams.decisions.fleet import fleet_roster
from streams.decisions.power import CombineConfig, index_site
from tests.agents.helpers import small_site

SITE = small_site()
ENTRY = SiteEntry(config=SITE, index=index_site(SITE), fleet=fleet_roster(SITE))
T0 = 1_795_000_000


def partial(ts: int, source: str, ai_w: float, mining_w: float = 0.0) -> SitePowerPartial:
    return SitePowerPartial(
        site_id="small",
        ts_s=ts,
        source_partition=source,
        ai_w=ai_w,
        mining_w=mining_w,
        readings=1,
        max_reading_ts_s=float(ts),
    )


def price(ts: int, usd: float) -> PriceIn:
    return PriceIn(
        signal=PriceSignal(
            market="ERCOT",
            settlement_point="LZ_WEST",
            kind="rt",
            interval_start_s=float(ts),
            interval_end_s=ts + 900.0,
            price_usd_per_mwh=usd,
            published_s=float(ts),
        )
    )


def test_partials_of_partitions_sum_once_the_second_closes() -> None:
    states = SiteStates.fresh("small")
    items = [
        partial(T0, "g:0", 1000.0),
        partial(T0, "g:1", 2000.0),
        partial(T0, "g:0", 1500.0),  # replaces the earlier partial of g:0
        partial(T0 + 3, "g:0", 10.0),
    ]
    states, out = process_site(states, items, ENTRY, now_s=5.0, config=Stage2Config())
    (p,) = out.powers  # lateness 2: second T0 closed by T0 + 3, T0 + 3 still open
    assert (p.ts_s, p.ai_w, p.readings, p.emitted_s) == (T0, 3500.0, 2, 5.0)
    assert [e.kind for e in out.surplus] == ["open"]


@pytest.mark.parametrize(
    ("wall_idle_s", "b_silent_s", "expect"),
    [
        # b lags 100 s of event time behind a (more than the 30 s event-time idle limit) but
        # sent a partial 1 s of wall clock ago: it holds T0+1.. open until it catches up.
        (30.0, 1.0, (98, 0, 0)),
        # Silent for 60 s of wall clock: stalled, released; its partials come back late.
        (30.0, 60.0, (1, 97, 97)),
        # Event time only: a lagging partition is released like a stalled one.
        (None, 1.0, (1, 97, 97)),
    ],
    ids=["lagging-holds", "silent-released", "event-time-only"],
)
def test_a_partition_lagging_in_a_backlog_holds_seconds_open(
    wall_idle_s: float | None, b_silent_s: float, expect: tuple[int, int, int]
) -> None:
    """(seconds with both partitions, seconds with a only, late readings) once b caught up."""
    combine = CombineConfig(
        lateness_s=2, partition_watermarks=True, partition_idle_wall_s=wall_idle_s
    )
    config = Stage2Config(combine=combine)
    batches: list[tuple[float, list[Stage2Item]]] = [
        (100.0, [partial(T0, "a", 1.0), partial(T0, "b", 1.0)]),
        (100.0 + b_silent_s, [partial(T0 + i, "a", 1.0) for i in range(1, 101)]),
        (101.0 + b_silent_s, [partial(T0 + i, "b", 1.0) for i in range(1, 101)]),
    ]
    states = SiteStates.fresh("small")
    readings: list[int] = []
    late = 0
    for now, items in batches:
        states, out = process_site(states, items, ENTRY, now_s=now, config=config)
        readings += [p.readings for p in out.powers]
        late += sum(p.late_readings for p in out.powers)
    late += states.combine.sites["small"].pending_late  # counted, not yet reported
    assert (readings.count(2), readings.count(1), late) == expect


@pytest.mark.parametrize(
    ("hold_s", "expect"),
    [
        # b's first partial comes 1 s of wall clock after a's: a 2 s hold waits for it.
        (2.0, [2] * 9),
        # No hold: a alone closes T0..T0+7 before b is known (b's partials for them come
        # late); T0+8 was still open.
        (0.0, [1] * 8 + [2]),
    ],
    ids=["hold", "no-hold"],
)
def test_a_new_site_waits_for_partitions_not_seen_yet(hold_s: float, expect: list[int]) -> None:
    combine = CombineConfig(lateness_s=2, partition_watermarks=True, startup_hold_wall_s=hold_s)
    config = Stage2Config(combine=combine)
    batches: list[tuple[float, list[Stage2Item]]] = [
        (100.0, [partial(T0 + i, "a", 1.0) for i in range(11)]),
        (101.0, [partial(T0 + i, "b", 1.0) for i in range(11)]),
        (103.0, [partial(T0 + 11, "a", 1.0), partial(T0 + 11, "b", 1.0)]),
    ]
    states = SiteStates.fresh("small")
    readings: list[int] = []
    for now, items in batches:
        states, out = process_site(states, items, ENTRY, now_s=now, config=config)
        readings += [p.readings for p in out.powers]
    assert readings == expect


def test_a_price_waits_for_the_clock_to_reach_its_publication() -> None:
    """Published at T0 + 5, a price is not used while the controller's clock (the closed
    seconds, here T0) is before it, whatever the arrival order; the next second's partials
    close T0 + 5 and the price acts then, on that second's mining."""
    for order in ("after", "before"):
        states = SiteStates.fresh("small")
        parts = [partial(T0, "a:0", 0.0, 500_000.0), partial(T0 + 3, "a:0", 0.0, 500_000.0)]
        items: list[Stage2Item] = (
            [*parts, price(T0 + 5, 1000.0)] if order == "after" else [price(T0 + 5, 1000.0), *parts]
        )
        states, out = process_site(states, items, ENTRY, now_s=0.0, config=Stage2Config())
        assert out.curtailments == [], order
        later = [partial(T0 + 5, "a:0", 0.0, 400_000.0), partial(T0 + 8, "a:0", 0.0, 400_000.0)]
        states, out = process_site(states, later, ENTRY, now_s=0.0, config=Stage2Config())
        issued = out.curtailments[0]
        assert issued.kind == "issued" and issued.baseline_mining_w == 400_000.0, order
        assert issued.price_published_s == T0 + 5 <= issued.ts_s, order


@pytest.mark.parametrize(
    ("mode", "clock", "wall", "expect"),
    [
        ("wall", TickClock(), 2000.0, 2000.0),
        ("event", TickClock(clock_s=500.0, wall_s=1000.0), 1003.5, 503.5),
        ("event", TickClock(), 1003.5, 0.0),  # no data yet: no tick
        ("off", TickClock(clock_s=500.0, wall_s=1000.0), 1003.5, 0.0),
    ],
)
def test_ticks_move_the_controller_clock(
    mode: str, clock: TickClock, wall: float, expect: float
) -> None:
    states = SiteStates.fresh("small")
    config = Stage2Config(tick=mode)  # type: ignore[arg-type]
    states, _ = process_site(
        states, [TickIn(wall_s=wall)], ENTRY, now_s=wall, config=config, clock=clock
    )
    assert states.controller.clock_s == expect


@pytest.mark.parametrize(("override", "expect"), [(None, None), (80.0, 80.0)])
def test_hashprice_override(override: float | None, expect: float | None) -> None:
    states = SiteStates.fresh("small")
    config = Stage2Config(hashprice_usd_per_ph_day=override)
    states, _ = process_site(states, [price(T0, 10.0)], ENTRY, now_s=0.0, config=config)
    assert states.controller.hashprice_usd_per_ph_day == expect


def test_seconds_the_surplus_detector_has_seen_are_skipped() -> None:
    states = SiteStates.fresh("small")
    states.surplus.last_ts_s = T0 + 1
    items = [partial(T0 + i, "g:0", 1000.0) for i in range(6)]
    states, out = process_site(states, items, ENTRY, now_s=0.0, config=Stage2Config())
    assert [p.ts_s for p in out.powers] == [T0, T0 + 1, T0 + 2]  # T0 + 3.. still open
    assert states.surplus.last_ts_s == T0 + 2
    assert [(e.kind, e.start_s) for e in out.surplus] == [("open", T0 + 2)]
