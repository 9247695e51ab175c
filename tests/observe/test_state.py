"""The observer's state: folding output-topic messages into a bounded view."""

from __future__ import annotations

import json

import pytest

from streams.observe import state as st
from streams.observe.state import Limits, ObserveState, fold, note_received, snapshot
from tests.observe.helpers import (
    T0,
    alert,
    carbon,
    curtailment,
    deadletter,
    power,
    price,
    site,
    surplus,
)


def folded(*msgs, **kw) -> ObserveState:
    s = ObserveState(**kw)
    for m in msgs:
        fold(s, "any", m, T0 + 100.0)
    return s


def test_power_goes_to_latest_and_series():
    s = folded(power(T0, ai_mw=190.0), power(T0 + 1, ai_mw=200.0, emitted_after_s=0.5))
    assert s.latest_power is not None and s.latest_power.ts_s == T0 + 1
    cols = s.power.column_arrays()
    assert cols["t"] == [T0, T0 + 1]
    assert cols["ai_w"] == [190e6, 200e6]
    # surplus = contract - AI - overhead = 400 - 200 - 10 = 190 MW
    assert cols["surplus_w"][-1] == pytest.approx(190e6)
    assert cols["latency_s"] == [0.25, 0.5]


def test_late_power_second_does_not_replace_latest():
    s = folded(power(T0 + 5, ai_mw=1.0), power(T0 + 2, ai_mw=2.0))
    assert s.latest_power is not None and s.latest_power.ts_s == T0 + 5
    assert s.power.late == 1


@pytest.mark.parametrize(
    ("follow", "sites", "shown", "ignored"),
    [
        (None, ["a", "b", "a"], "a", {"b": 1}),  # first site seen is adopted
        ("b", ["a", "b", "a"], "b", {"a": 2}),  # an explicit site wins
        (None, [], None, {}),
    ],
)
def test_follows_one_site(follow, sites, shown, ignored):
    s = folded(*(power(T0 + i, site_id=x) for i, x in enumerate(sites)), site_id=follow)
    assert s.site_id == shown
    assert s.other_sites == ignored
    assert {r for r in s.power.column_arrays()["t"]} == {
        T0 + i for i, x in enumerate(sites) if x == shown
    }


def test_other_sites_count_is_bounded():
    s = folded(power(T0), *(alert(site_id=f"x{i}") for i in range(100)),
               limits=Limits(other_sites=4))
    assert len(s.other_sites) == 5  # four named plus "(other)"
    assert sum(s.other_sites.values()) == 100


def test_curtailment_lifecycle_and_response_time():
    issued = curtailment("issued")
    achieved = curtailment("achieved", achieved_at_s=T0 + 12.5, response_time_s=12.5,
                           deadline_met=True, ts_s=T0 + 12.5)
    s = folded(issued)
    assert list(s.active_curtailments) == ["c1"]
    # not yet achieved: the clock runs from the issue
    assert st.curtailment_elapsed_s(s.active_curtailments["c1"], T0 + 30) == 30
    fold(s, "curtailment.events.v1", achieved, T0 + 13)
    assert st.curtailment_elapsed_s(s.active_curtailments["c1"], T0 + 30) == 12.5
    fold(s, "curtailment.events.v1", curtailment("ended", ended_at_s=T0 + 300, ts_s=T0 + 300),
         T0 + 300)
    assert s.active_curtailments == {}
    assert [e.event_id for e in s.curtailment_history] == ["c1"]
    timeline = snapshot(s, T0 + 301)["curtailments"]["timeline"]
    assert timeline == [{"event_id": "c1", "reasons": ["economic", "grid"],
                         "issued_at_s": T0, "achieved_at_s": None, "ended_at_s": T0 + 300}]


def test_active_curtailments_are_bounded_when_ends_are_lost():
    s = folded(*(curtailment("issued", event_id=f"c{i}", issued=T0 + i) for i in range(30)),
               limits=Limits(curtailment_history=5))
    assert sorted(s.active_curtailments) == [f"c{i}" for i in range(25, 30)]


@pytest.mark.parametrize(
    ("states", "firing", "recent"),
    [
        (["firing"], 1, 1),
        (["firing", "resolved"], 0, 2),
        (["firing", "firing"], 1, 2),  # a repeat is one condition, shown twice in the log
        (["resolved"], 0, 1),
    ],
)
def test_alerts_firing_and_recent(states, firing, recent):
    s = folded(*(alert(x, ended_at_s=T0 + 5 if x == "resolved" else None) for x in states))
    assert len(s.firing) == firing
    assert len(s.alerts) == recent


def test_alert_log_is_bounded():
    s = folded(*(alert(alert_id=f"a{i}", started=T0 + i) for i in range(300)),
               limits=Limits(alerts=10, firing_alerts=20))
    assert len(s.alerts) == 10
    assert sorted(s.firing) == sorted(f"a{i}" for i in range(280, 300))


@pytest.mark.parametrize(
    ("msgs", "expected"),
    [
        # the first real-time settlement point is adopted until a config says otherwise
        ([price(T0, 40.0), price(T0, 99.0, point="HB_HOUSTON")], [(T0, 40.0)]),
        # day-ahead prices are not real-time
        ([price(T0, 40.0, kind="da")], []),
        ([price(T0, 40.0, kind="sced"), price(T0 + 900, 41.0)], [(T0, 40.0), (T0 + 900, 41.0)]),
        # a restated interval replaces
        ([price(T0, 40.0), price(T0, 45.0)], [(T0, 45.0)]),
        # the config names the point: prices of another point adopted before are dropped
        ([price(T0, 99.0, point="HB_HOUSTON"), site(), price(T0, 40.0)], [(T0, 40.0)]),
        ([site(point="HB_HOUSTON"), price(T0, 40.0), price(T0, 50.0, point="HB_HOUSTON")],
         [(T0, 50.0)]),
    ],
)
def test_prices(msgs, expected):
    assert folded(*msgs).prices.items() == expected


@pytest.mark.parametrize(
    ("msgs", "average", "marginal"),
    [
        ([carbon(T0, 347.2)], [(T0, 347.2)], []),
        ([carbon(T0, 347.2, kind="marginal")], [], [(T0, 347.2)]),
        ([site(), carbon(T0, 300.0, region="CAISO")], [], []),  # site is in ERCOT
        ([carbon(T0, 300.0), carbon(T0, 310.0)], [(T0, 310.0)], []),
    ],
)
def test_carbon(msgs, average, marginal):
    s = folded(*msgs)
    assert s.carbon.items() == average
    assert s.marginal_carbon.items() == marginal


# Breakevens by hand: hashprice / (0.024 x J/TH).
S21_50 = 50 / (0.024 * 17.5)
S19_50 = 50 / (0.024 * 30)
# Fleet J/TH = (100*200*17.5 + 100*100*30) W / (100*200 + 100*100) TH/s = 650,000 / 30,000.
FLEET_50 = 50 / (0.024 * 650_000 / 30_000)


@pytest.mark.parametrize(
    ("msgs", "override", "models", "fleet"),
    [
        ([], None, {}, None),
        ([site()], None, {"S21": S21_50, "S19jPro": S19_50}, FLEET_50),
        ([site()], 25.0, {"S21": S21_50 / 2, "S19jPro": S19_50 / 2}, FLEET_50 / 2),
        ([site(hashprice=100.0)], None, {"S21": 2 * S21_50, "S19jPro": 2 * S19_50},
         2 * FLEET_50),
    ],
)
def test_breakevens(msgs, override, models, fleet):
    s = folded(*msgs, hashprice_override=override)
    assert st.model_breakevens(s) == pytest.approx(models)
    assert st.fleet_breakeven(s) == (pytest.approx(fleet) if fleet is not None else None)


def test_fleet_breakeven_figures():
    # Independent of the formula above: 119.05 S21, 69.44 S19jPro, 96.15 fleet.
    s = folded(site())
    assert round(st.fleet_breakeven(s) or 0, 2) == 96.15
    assert {k: round(v, 2) for k, v in st.model_breakevens(s).items()} == {
        "S21": 119.05, "S19jPro": 69.44}


@pytest.mark.parametrize(
    ("msgs", "rate"),
    [
        ([], None),
        ([power(T0)], None),  # no intensity yet
        # 310 MW x 347.2 g/kWh = 310,000 kWh/h x 0.3472 kg/kWh = 107,632 kg/h
        ([carbon(T0 - T0 % 3600, 347.2), power(T0)], 107_632.0),
        # the hour of the second applies, not a later one
        ([carbon(T0 - T0 % 3600, 100.0), carbon(T0 - T0 % 3600 + 3600, 900.0), power(T0)],
         31_000.0),
    ],
)
def test_carbon_rate(msgs, rate):
    got = st.carbon_rate_kg_per_h(folded(*msgs))
    assert got == (pytest.approx(rate) if rate is not None else None)


def test_throughput_and_lag():
    s = ObserveState()
    note_received(s, "site.power.v1", 3, T0)
    note_received(s, "site.power.v1", 3, T0 + 1)
    note_received(s, "alerts.v1", 1, T0 + 1)
    st.set_lag(s, {"site.power.v1": 42}, T0 + 1)
    snap = snapshot(s, T0 + 1.5)
    assert snap["throughput"] == {"alerts.v1": 1.0, "site.power.v1": 3.0}
    assert snap["lag"] == {"site.power.v1": 42}
    assert snap["last_message_s"] == T0 + 1


def test_deadletters_and_undecodable_are_counted():
    s = folded(deadletter(), deadletter(), deadletter("telemetry.asic.v1"))
    st.note_undecodable(s, "alerts.v1")
    assert s.deadletters == {"telemetry.gpu.v1": 2, "telemetry.asic.v1": 1}
    assert s.undecodable == {"alerts.v1": 1}


def test_power_ring_bounded_over_a_long_run():
    s = ObserveState(limits=Limits(power_s=60))
    for i in range(5000):
        fold(s, "site.power.v1", power(T0 + i), T0 + i)
    assert len(s.power) == 60
    assert s.power.column_arrays()["t"][0] == T0 + 5000 - 60


def test_snapshot_is_json_and_carries_the_figures():
    s = folded(site(), power(T0), surplus(), curtailment("issued"), alert(), price(T0, 412.5),
               carbon(T0 - T0 % 3600, 347.2))
    snap = json.loads(json.dumps(snapshot(s, T0 + 20)))
    assert snap["site_id"] == "s1"
    assert snap["interconnection_limit_w"] == 420e6
    assert snap["latest_power"]["total_w"] == 310e6
    assert snap["surplus"]["unabsorbed_w"] == 90e6
    assert snap["curtailments"]["active"][0]["elapsed_s"] == 20
    assert snap["alerts"]["firing"][0]["condition"] == "meter_silent"
    assert snap["prices"]["latest"] == {"start_s": T0, "usd_per_mwh": 412.5}
    assert snap["prices"]["fleet_breakeven_usd_per_mwh"] == pytest.approx(FLEET_50)
    assert snap["carbon"]["latest"]["g_per_kwh"] == 347.2
