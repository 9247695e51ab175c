"""The main job's plan (pure): scaling, the scheduled spike and the dispatch notice."""

from __future__ import annotations

import datetime as dt

import msgspec

from schemas.grid import DispatchSignal, PriceSignal
from streams.pipeline.plan import (
    DayPlan,
    LocalWindow,
    dispatch_records,
    faults,
    full_day,
    prepare_site,
)
from streams.replay import scenario as scenarios
from streams.replay.records import merge
from streams.site_file import load_site_file


def test_prepare_site_scales_the_fleet_and_schedules_the_spike() -> None:
    plan = DayPlan(scale=0.01)
    ref = load_site_file(plan.site_file)
    site_file = prepare_site(plan, ref)
    site = site_file.site
    assert sum(m.count for m in site.asic_models) == round(
        sum(m.count for m in ref.site.asic_models) * 0.01
    )
    assert site.interconnection_limit_mw == ref.site.interconnection_limit_mw * 0.01
    assert site.policy.site_limit_headroom_mw == ref.site.policy.site_limit_headroom_mw * 0.01
    assert site.policy.hashprice_usd_per_ph_day == plan.hashprice_usd_per_ph_day
    (spike,) = site_file.sim.ai_spikes
    local = dt.datetime.fromtimestamp(spike.start_s, dt.UTC).astimezone(plan.tz(site_file))
    assert (local.date(), local.hour, local.minute) == (plan.day, 19, 15)  # CDT, UTC-5
    assert spike.duration_s == 20 * 60


def test_dispatch_is_opened_then_closed_at_local_time() -> None:
    plan = DayPlan(scale=0.01, dispatch=LocalWindow(dt.time(14, 0), 30))
    site_file = prepare_site(plan, load_site_file(plan.site_file))
    opened, closed = dispatch_records(plan, site_file)
    a = msgspec.json.decode(opened.value, type=DispatchSignal)
    b = msgspec.json.decode(closed.value, type=DispatchSignal)
    assert a.event_id == b.event_id and a.end_s is None and b.end_s == a.start_s + 1800
    assert a.start_s == dt.datetime(2025, 7, 1, 19, 0, tzinfo=dt.UTC).timestamp()  # 14:00 CDT
    nameplate = sum(m.count * m.power_w for m in site_file.site.asic_models) / 1e6
    assert a.reduce_to_mw == round(nameplate * 0.2, 6)


def test_a_collector_outage_is_a_fault_at_local_time_and_none_by_default() -> None:
    site_file = load_site_file(DayPlan().site_file)
    assert faults(DayPlan(), site_file).outage_s == 0.0
    f = faults(DayPlan(collector_outage_s=120.0), site_file)
    assert f.outage_s == 120.0
    # 20:40 CDT is 01:40 UTC the next day.
    assert f.outage_start_s == dt.datetime(2025, 7, 2, 1, 40, tzinfo=dt.UTC).timestamp()


def test_run_starts_at_the_requested_local_hour() -> None:
    plan = DayPlan(start_hour=13.5)
    site_file = load_site_file(plan.site_file)
    assert plan.start_s(site_file) == dt.datetime(2025, 7, 1, 18, 30, tzinfo=dt.UTC).timestamp()


def test_default_window_holds_the_spike_the_dispatch_and_the_price_spike() -> None:
    plan = DayPlan()
    site_file = load_site_file(plan.site_file)
    start = plan.start_s(site_file)
    end = start + plan.hours * 3600
    price_spike = plan.at(site_file, dt.time(21, 0))  # $340.34/MWh at LZ_WEST, bundled data
    assert plan.ai_spike is not None and plan.dispatch is not None
    for window in (plan.ai_spike, plan.dispatch):
        begins = plan.at(site_file, window.start)
        assert start <= begins and begins + window.minutes * 60 <= end
    assert start <= price_spike < end
    assert plan.hours * 3600 / plan.speed <= 5 * 60  # wall-clock minutes of the default run


def test_full_day_runs_from_midnight_with_the_day_events() -> None:
    plan = full_day(DayPlan(scale=0.01))
    assert (plan.start_hour, plan.hours, plan.scale) == (0.0, 24.0, 0.01)
    assert plan.ai_spike == LocalWindow(dt.time(11, 0), 20)
    assert plan.dispatch == LocalWindow(dt.time(14, 0), 30)


def test_the_runs_grid_sends_each_price_at_its_publication() -> None:
    """`spillway run` feeds the grid records at their time: a 15-minute SPP goes out 5 min
    after its interval ends (no SCED data for 2025-07-01), never at its start, and the
    evening spike (21:00-21:15, $340.34) is known at 21:20 within the default window."""
    plan = DayPlan()
    site_file = load_site_file(plan.site_file)
    grid = scenarios.sources(scenarios.load(plan.grid_scenario))
    prices = [
        (r.ts_s, msgspec.json.decode(r.value, type=PriceSignal))
        for r in merge(grid)
        if r.topic == "grid.prices.v1"
    ]
    assert prices and all(t == p.published_s == p.interval_end_s + 300 for t, p in prices)
    spike = next(p for _, p in prices if p.price_usd_per_mwh > 340)
    assert spike.published_s == plan.at(site_file, dt.time(21, 20))
    assert spike.published_s < plan.start_s(site_file) + plan.hours * 3600
