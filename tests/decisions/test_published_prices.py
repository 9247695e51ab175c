"""No decision uses a price before ERCOT publishes it, on real prices.

The bundled 15-minute RT SPPs of 2025-07-01 (LZ_WEST, an evening spike to about $340/MWh)
and the shared SCED run (NP6-788-CD, 2026-06-25 00:40:18) go through the replay's
publication pacing and the controller, with one SitePower a minute; every event's audit
names the prices it acted on, and each was published at or before the event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from schemas.events import CurtailmentEvent
from schemas.grid import PriceSignal
from streams.collectors import grid_feeds
from streams.decisions.curtailment import (
    ControllerInput,
    ControllerState,
    controller_step,
)
from streams.decisions.fleet import fleet_roster
from streams.replay.prices import published_price_records
from streams.replay.records import Record

from .conftest import make_site
from .helpers import power

REPO = Path(__file__).resolve().parents[2]
RT_FILE = REPO / "infra/data/ERCOT_RTM_SPP_hubs_loadzones_15min_2025-07-01_to_2025-07-03.csv"
SCED_FILE = (
    REPO / "../shared/data/ercot_market/sced_lmp/np6788_lmp_20260625_004018_hubs_lz_slice.csv"
)
DAY_START = 1_751_346_000  # 2025-07-01T00:00 CDT
DAY_END = DAY_START + 86_400


def _prices(records: Iterator[Record]) -> list[tuple[float, PriceSignal]]:
    return [(r.ts_s, msgspec.json.decode(r.value, type=PriceSignal)) for r in records]


def _day_inputs(prices: list[tuple[float, PriceSignal]]) -> list[ControllerInput]:
    """Prices at their send time interleaved with one SitePower a minute (the clock)."""
    timed: list[tuple[float, int, ControllerInput]] = [(t, 1, p) for t, p in prices]
    timed += [(float(t), 0, power(t)) for t in range(DAY_START, DAY_END, 60)]
    timed.sort(key=lambda x: (x[0], x[1]))
    return [x for _, _, x in timed]


def _run_day(prices: list[tuple[float, PriceSignal]]) -> list[CurtailmentEvent]:
    # Hashprice $36/PH/day: S19 breaks even at $50/MWh, S21 at $100/MWh.
    site = make_site(economic_confirm_intervals=1)
    _, out = controller_step(
        ControllerState(site_id="s1"), _day_inputs(prices), site, fleet_roster(site)
    )
    return out.events


def _assert_no_unpublished_input(events: list[CurtailmentEvent]) -> None:
    for e in events:
        if e.price_published_s is not None:
            assert e.price_published_s <= e.ts_s, e
        assert all(p <= e.ts_s for p in e.confirm_published_s), e
        if e.hashprice_published_s is not None:
            assert e.hashprice_published_s <= e.ts_s, e


def test_replayed_spp_is_sent_at_publication_and_decisions_follow_it() -> None:
    frame = grid_feeds.read_prices(RT_FILE, "ercot_rtm_spp_15min")
    prices = _prices(published_price_records(frame, "rt", ["LZ_WEST"]))
    assert all(t == p.published_s == p.interval_end_s + 300 for t, p in prices)
    events = _run_day([(t, p) for t, p in prices if DAY_START <= t < DAY_END])
    issued = [e for e in events if e.kind == "issued"]
    assert issued, "the evening spike above $50/MWh curtails the S19s"
    _assert_no_unpublished_input(events)
    # The first curtailment acts on a price whose interval is over: never at its start.
    first = issued[0]
    assert first.price_interval_start_s is not None and first.price_usd_per_mwh is not None
    assert first.ts_s >= first.price_interval_start_s + 900 + 300
    assert first.price_usd_per_mwh > 50.0 and first.reasons == ["economic"]


def test_a_feed_that_sends_at_interval_start_cannot_pull_decisions_ahead() -> None:
    """The old pacing (SPP sent at its interval's start, no published_s): the controller
    still acts only after the interval ends plus the posting lag."""
    frame = grid_feeds.read_prices(RT_FILE, "ercot_rtm_spp_15min")
    early = [
        (p.interval_start_s, msgspec.structs.replace(p, published_s=None))
        for _, p in _prices(published_price_records(frame, "rt", ["LZ_WEST"]))
        if DAY_START <= p.interval_start_s < DAY_END
    ]
    events = _run_day(early)
    assert events
    for e in events:
        assert e.price_interval_start_s is None or e.ts_s >= e.price_interval_start_s + 1200


@pytest.mark.skipif(not SCED_FILE.exists(), reason="shared data not mounted")
def test_sced_lmp_is_published_after_its_interval() -> None:
    frame = grid_feeds.read_prices(SCED_FILE, "ercot_sced_lmp")
    ((t, p),) = _prices(published_price_records(frame, "sced", ["LZ_WEST"]))
    # SCEDTimestamp 06/25/2026 00:40:18 CDT = 05:40:18Z; interval [run, run + 5 min).
    run_s = 1_782_366_018
    assert (p.interval_start_s, p.interval_end_s) == (run_s, run_s + 300)
    assert t == p.published_s == run_s + 600
    assert p.price_usd_per_mwh == 28.90
