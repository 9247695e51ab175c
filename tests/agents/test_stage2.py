"""Stage 2 without Kafka: partials of several partitions, input order, ticks, hashprice."""

from __future__ import annotations

import pytest

from schemas.events import SitePowerPartial
from schemas.grid import PriceSignal
from streams.agents.messages import PriceIn, TickIn
from streams.agents.sites import SiteEntry
from streams.agents.stage2 import SiteStates, Stage2Config, Stage2Item, TickClock, process_site
from streams.decisions.fleet import fleet_roster
from streams.decisions.power import index_site
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


def test_controller_sees_inputs_in_arrival_order() -> None:
    """A price after the partials that close T0: the event's baseline is that second's
    mining; the price first, and no second has closed: the fleet's nameplate."""
    fleet_w = ENTRY.fleet.total_w
    for order, baseline in (("after", 500_000.0), ("before", fleet_w)):
        states = SiteStates.fresh("small")
        parts = [partial(T0, "a:0", 0.0, 500_000.0), partial(T0 + 3, "a:0", 0.0, 500_000.0)]
        items: list[Stage2Item] = (
            [*parts, price(T0 + 5, 1000.0)] if order == "after" else [price(T0 + 5, 1000.0), *parts]
        )
        states, out = process_site(states, items, ENTRY, now_s=0.0, config=Stage2Config())
        issued = out.curtailments[0]
        assert issued.kind == "issued" and issued.baseline_mining_w == baseline, order


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
