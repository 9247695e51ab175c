"""Ancillary awards reserve load from economic and 4CP curtailment; stale feeds hold economic
decisions and alert; the event audit names what drove each decision.

Site (conftest): S19 10 x 3 kW (breakeven $50/MWh), S21 10 x 3 kW ($100/MWh), fleet 60 kW.
"""

from __future__ import annotations

import pytest

from schemas.events import CurtailmentEvent
from schemas.grid import DispatchSignal, PriceSignal
from schemas.market_positions import AncillaryAward
from streams.decisions.alerts import AlertState, FeedStatus, alerts_step
from streams.decisions.curtailment import (
    ControllerInput,
    ControllerOutput,
    ControllerState,
    Tick,
    controller_step,
)
from streams.decisions.fleet import fleet_roster

from .conftest import PEAK_START, T0, make_site
from .helpers import power

HOUR = T0 - T0 % 3600


def price(published: int, usd: float) -> PriceSignal:
    return PriceSignal(
        market="ERCOT",
        settlement_point="LZ_WEST",
        kind="sced",
        interval_start_s=published - 600,
        interval_end_s=published - 300,
        price_usd_per_mwh=usd,
        published_s=published,
    )


def award(mw: float, hour_start: int = HOUR, service: str = "ECRS") -> AncillaryAward:
    return AncillaryAward(
        site_id="s1",
        service=service,  # type: ignore[arg-type]
        market="DAM",
        hour_start_s=hour_start,
        mw=mw,
    )


def run(
    inputs: list[ControllerInput], state: ControllerState | None = None, **policy: object
) -> tuple[ControllerState, ControllerOutput]:
    site = make_site(economic_confirm_intervals=1, **policy)
    return controller_step(state or ControllerState(site_id="s1"), inputs, site, fleet_roster(site))


@pytest.mark.parametrize(
    ("awarded_mw", "target_w"),
    [
        (0.0, 0.0),  # $150 is above both breakevens: everything sleeps
        (0.02, 20_000.0),  # 20 kW backs the award: it stays on
        (0.1, 60_000.0),  # more than the fleet: nothing can be shed
    ],
)
def test_economic_curtailment_keeps_the_reserved_load(awarded_mw: float, target_w: float) -> None:
    _, out = run([award(awarded_mw), power(T0), price(T0, 150.0), Tick(ts_s=T0)])
    found: list[CurtailmentEvent | None] = [e for e in out.events if e.kind == "issued"]
    (issued,) = found or [None]
    if target_w == 60_000.0:
        assert issued is not None and issued.target_mining_w == 60_000.0
    else:
        assert issued is not None and issued.target_mining_w == target_w
    assert issued.reserved_mw == awarded_mw
    if awarded_mw:
        assert issued.reserved_awards == [f"ECRS/DAM/{HOUR}/{awarded_mw:g}"]


def test_4cp_keeps_the_reserved_load_and_a_deployment_sheds_it() -> None:
    peak_hour = PEAK_START - PEAK_START % 3600
    first: list[ControllerInput] = [award(0.03, peak_hour), power(PEAK_START)]
    state, out = run(first)
    assert out.events[0].reasons == ["4cp"] and out.events[0].target_mining_w == 30_000.0
    deploy = DispatchSignal(
        event_id="ecrs-1",
        site_id="s1",
        kind="ecrs",
        reduce_to_mw=0.0,
        start_s=PEAK_START + 10,
        response_deadline_s=600.0,
    )
    state, out = run([deploy, Tick(ts_s=PEAK_START + 10)], state)
    assert out.events[-1].reasons == ["4cp", "grid"] and out.events[-1].target_mining_w == 0.0


def test_award_outside_its_hour_reserves_nothing() -> None:
    _, out = run([award(0.03, HOUR + 3600), power(T0), price(T0, 150.0), Tick(ts_s=T0)])
    assert out.events[0].target_mining_w == 0.0 and out.events[0].reserved_mw == 0.0


def test_stale_price_holds_economic_state_and_alerts() -> None:
    # Curtailed at $150; then no new price for 1200 s + 1: the hold keeps both models
    # asleep even though a later (stale) check could not confirm anything.
    state, out = run([power(T0), price(T0, 150.0), Tick(ts_s=T0)], price_max_age_s=1200.0)
    assert state.economic_models == ["S19", "S21"]
    state, out = run([power(T0 + 1201)], state, price_max_age_s=1200.0)
    assert state.price_stale and state.economic_models == ["S19", "S21"]
    # A fresh price below both breakevens releases at once.
    state, out = run([price(T0 + 1300, 20.0), power(T0 + 1300)], state, price_max_age_s=1200.0)
    assert not state.price_stale and state.economic_models == []
    assert any(e.kind == "released" and "price_feed:ok" in e.trigger_states for e in out.events)


def test_stale_price_starts_no_new_curtailment() -> None:
    state, _ = run([power(T0), price(T0, 20.0), Tick(ts_s=T0)])
    assert state.economic_models == []
    # A $150 price, but published 1201 s before the clock: too old to act on.
    state, out = run([price(T0 + 100, 150.0), power(T0 + 1301)], state)
    assert state.price_stale and state.economic_models == [] and out.events == []


def test_feed_stale_alert_fires_and_resolves() -> None:
    site = make_site()
    state, fired = alerts_step(
        AlertState(site_id="s1"),
        site,
        now_s=T0,
        feeds=[FeedStatus(feed="price", stale=True, ts_s=T0)],
    )
    assert [(a.condition, a.subject, a.state) for a in fired] == [("feed_stale", "price", "firing")]
    state, again = alerts_step(
        state, site, now_s=T0 + 1, feeds=[FeedStatus(feed="price", stale=True, ts_s=T0 + 1)]
    )
    assert again == []
    _, resolved = alerts_step(
        state, site, now_s=T0 + 2, feeds=[FeedStatus(feed="price", stale=False, ts_s=T0 + 2)]
    )
    assert [(a.condition, a.state) for a in resolved] == [("feed_stale", "resolved")]


def test_audit_answers_why_we_were_curtailed() -> None:
    """The issued event alone explains itself: the $60 price (published when), above S19's
    $50 breakeven and below S21's $100, at the policy hashprice, nothing reserved."""
    _, out = run([power(T0), price(T0, 60.0), Tick(ts_s=T0)])
    (e,) = out.events
    assert (e.kind, e.reasons, e.target_mining_w) == ("issued", ["economic"], 30_000.0)
    assert (e.price_kind, e.price_usd_per_mwh, e.price_published_s) == ("sced", 60.0, T0)
    assert e.confirm_prices_usd_per_mwh == [60.0] and e.confirm_published_s == [T0]
    assert dict(zip(e.breakeven_models, e.breakeven_usd_per_mwh, strict=True)) == {
        "S19": 50.0,
        "S21": 100.0,
    }
    assert e.hashprice_usd_per_ph_day == 36.0 and e.hashprice_source == "policy"
    assert e.reserved_mw == 0.0
    assert e.trigger_states == [
        "economic:on",
        "grid:off",
        "4cp:off",
        "site_limit:off",
        "price_feed:ok",
        "hashprice_feed:policy",
    ]
    assert e.site_load_w == 95_000.0 and e.site_limit_w == 140_000.0
