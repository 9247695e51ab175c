"""Curtailment controller: triggers, hysteresis, merging, response tracking, restore.

Site (conftest): S19 10 x 3 kW at breakeven $50.00/MWh, S21 10 x 3 kW at $100.00/MWh,
site limit 0.14 MW, deadline 60 s, restore 15 kW every 30 s.
"""

from __future__ import annotations

import msgspec
import pytest

from schemas.grid import DispatchSignal, FrequencySample, PriceSignal
from schemas.site import SiteConfig
from streams.decisions.alerts import AlertState, alerts_step
from streams.decisions.breakeven import Hashprice
from streams.decisions.curtailment import (
    ControllerConfig,
    ControllerInput,
    ControllerOutput,
    ControllerState,
    Tick,
    controller_step,
)
from streams.decisions.fleet import fleet_roster

from .conftest import PEAK_END, PEAK_START, T0, make_site
from .helpers import power

TIGHT = ControllerConfig(achieve_tolerance_w=500.0, achieve_tolerance_fraction=0.0)


def price(start: int, usd: float, point: str = "LZ_WEST", kind: str = "rt") -> PriceSignal:
    """A price posted at ``start`` (these cases time decisions from the posting)."""
    return PriceSignal(
        market="ERCOT",
        settlement_point=point,
        kind=kind,  # type: ignore[arg-type]
        interval_start_s=start - 300,
        interval_end_s=start,
        price_usd_per_mwh=usd,
        published_s=start,
    )


def dispatch(
    start: int, reduce_to_mw: float | None = 0.0, end: int | None = None, event_id: str = "dr-1"
) -> DispatchSignal:
    return DispatchSignal(
        event_id=event_id,
        site_id="s1",
        kind="demand_response",
        reduce_to_mw=reduce_to_mw,
        start_s=start,
        end_s=end,
        response_deadline_s=60.0,
    )


def run(
    inputs: list[ControllerInput],
    site: SiteConfig | None = None,
    cfg: ControllerConfig = TIGHT,
    state: ControllerState | None = None,
) -> tuple[ControllerState, ControllerOutput]:
    site = site or make_site()
    return controller_step(
        state or ControllerState(site_id="s1"), with_ticks(inputs), site, fleet_roster(site), cfg
    )


def with_ticks(inputs: list[ControllerInput]) -> list[ControllerInput]:
    """A tick at each price's posting, as the agent sends every second: a price does not
    move the controller's clock itself."""
    out: list[ControllerInput] = []
    for x in inputs:
        out.append(x)
        if isinstance(x, PriceSignal) and x.published_s is not None:
            out.append(Tick(ts_s=x.published_s))
    return out


def asleep_ids(out: ControllerOutput) -> set[str]:
    ids: set[str] = set()
    for c in out.commands:
        if c.action == "sleep":
            ids.update(c.miner_ids)
        else:
            ids.difference_update(c.miner_ids)
    return ids


S19 = {f"s1-S19-{i:05d}" for i in range(10)}
S21 = {f"s1-S21-{i:05d}" for i in range(10)}


@pytest.mark.parametrize(
    ("margin", "prices", "curtailed"),
    [
        ({}, [50.0, 50.0], []),  # exactly at breakeven: never curtails
        ({}, [50.01], []),  # confirm count 2: one interval is not enough
        ({}, [50.01, 50.01], ["S19"]),
        ({}, [50.01, 49.0, 50.01], []),  # not two in a row
        ({}, [100.0, 100.0], ["S19"]),  # S21 exactly at its breakeven
        ({}, [100.01, 100.01], ["S19", "S21"]),
        ({}, [60.0, 60.0, 49.99], []),  # below breakeven - 0: resumes
        ({}, [60.0, 60.0, 50.0], ["S19"]),  # at breakeven: keeps its state
        # Margin $5: curtail above $55, resume below $45; in between nothing changes.
        ({"price_margin_usd_per_mwh": 5.0}, [55.0, 55.0], []),
        ({"price_margin_usd_per_mwh": 5.0}, [55.01, 55.01], ["S19"]),
        ({"price_margin_usd_per_mwh": 5.0}, [60.0, 60.0, 45.0], ["S19"]),
        ({"price_margin_usd_per_mwh": 5.0}, [60.0, 60.0, 44.99], []),
        ({"economic_confirm_intervals": 1}, [50.01], ["S19"]),
    ],
)
def test_economic_trigger(
    margin: dict[str, float], prices: list[float], curtailed: list[str]
) -> None:
    inputs: list[ControllerInput] = [price(T0 + 300 * i, p) for i, p in enumerate(prices)]
    state, out = run(inputs, make_site(**margin))
    assert state.economic_models == curtailed
    expected = set().union(*({"S19": S19, "S21": S21}[m] for m in curtailed))
    if curtailed or not out.events:
        assert asleep_ids(out) == expected
    else:
        # Resumed: the restore has begun (first 15 kW step: 5 of the 10 S19 back on).
        assert out.events[-1].kind == "released"
        assert asleep_ids(out) == {f"s1-S19-{i:05d}" for i in range(5)}


def test_other_settlement_points_and_da_prices_are_ignored() -> None:
    state, out = run([price(T0, 90.0, point="HB_NORTH"), price(T0 + 300, 90.0, kind="da")] * 2)
    assert state.prices == {}
    assert out.events == []


def test_hashprice_update_moves_breakeven() -> None:
    # At $72/PH/day S19 breaks even at 72 / 0.72 = $100/MWh: $60 no longer curtails.
    state, out = run(
        [Hashprice(ts_s=T0, usd_per_ph_day=72.0), price(T0, 60.0), price(T0 + 300, 60.0)]
    )
    assert state.economic_models == []
    assert out.commands == []


def test_sleep_commands_priority_and_ids() -> None:
    _, out = run([price(T0, 150.0), price(T0 + 300, 150.0)])
    assert [(c.action, c.priority, c.miner_ids[0], len(c.miner_ids)) for c in out.commands] == [
        ("sleep", 0, "s1-S19-00000", 10),  # least efficient first
        ("sleep", 1, "s1-S21-00000", 10),
    ]
    (ev,) = out.events
    assert ev.kind == "issued"
    assert all(c.event_id == ev.event_id and c.deadline_s == T0 + 360 for c in out.commands)


def test_overlapping_triggers_make_one_event_with_both_reasons() -> None:
    inputs: list[ControllerInput] = [
        power(T0 + 299),
        price(T0, 60.0),
        price(T0 + 300, 60.0),  # economic: S19 off, target 30 kW
        power(T0 + 330, mining=30_000.0),
        dispatch(T0 + 400, reduce_to_mw=0.0),
        Tick(ts_s=T0 + 400),  # grid joins: target 0
        power(T0 + 430, mining=0.0),
        price(T0 + 600, 40.0),  # economic clears; grid remains
    ]
    state, out = run(inputs)
    assert len({e.event_id for e in out.events}) == 1
    assert [(e.kind, e.ts_s - T0) for e in out.events] == [
        ("issued", 300),
        ("achieved", 330),
        ("updated", 400),
        ("achieved", 430),
    ]
    assert out.events[-1].reasons == ["economic", "grid"]
    assert out.events[-1].reason_details == [
        "economic:S19 above breakeven 50.00 USD/MWh",
        "grid:demand_response dr-1",
    ]
    assert out.events[-1].target_mining_w == 0.0
    assert out.events[-1].baseline_mining_w == 60_000.0
    assert asleep_ids(out) == S19 | S21
    assert state.event is not None and state.event.reasons == ["economic", "grid"]


def test_triggers_arriving_together_merge() -> None:
    inputs: list[ControllerInput] = [
        power(PEAK_START - 301),
        FrequencySample(source_id="pmu", ts_s=PEAK_START - 300, freq_hz=59.6),
    ]
    _, out = run(inputs)
    (ev,) = out.events
    assert ev.kind == "issued"
    assert sorted(ev.reasons) == ["4cp", "grid"]
    # Binding deadline: the under-frequency one (1 s), earlier than the 4CP window start.
    assert ev.deadline_s == PEAK_START - 299


def test_response_tracking_and_restore_in_steps() -> None:
    inputs: list[ControllerInput] = [power(T0), dispatch(T0, reduce_to_mw=0.015)]
    inputs += [power(T0 + s, mining=40_000.0) for s in range(1, 10)]
    inputs += [power(T0 + 10, mining=16_000.0), power(T0 + 11, mining=15_400.0)]
    inputs += [power(T0 + s, mining=15_000.0) for s in range(12, 42)]
    state, out = run(inputs)
    issued, achieved = out.events
    assert (issued.kind, issued.target_mining_w, issued.deadline_s) == ("issued", 15_000.0, T0 + 60)
    # 15 kW: all 10 S21 stay on with 15 kW, i.e. 5 S21; every S19 sleeps.
    assert asleep_ids(out) == S19 | {f"s1-S21-{i:05d}" for i in range(5)}
    assert achieved.kind == "achieved"
    assert achieved.achieved_at_s == T0 + 11  # first second <= 15 kW + 500 W
    assert achieved.response_time_s == 11
    assert achieved.deadline_met is True
    # Baseline 60 kW: 9 s x 20 kW + 44 kW + 44.6 kW + 30 s x 45 kW, in W*s / 3600.
    expected_wh = (9 * 20_000 + 44_000 + 44_600 + 30 * 45_000) / 3600
    assert state.event is not None
    assert state.event.curtailed_wh == pytest.approx(expected_wh)

    end = dispatch(T0, reduce_to_mw=0.015, end=T0 + 42)
    ticks = [end] + [Tick(ts_s=T0 + s) for s in (42, 50, 71, 72, 101, 102, 200)]
    state, out = run(ticks, state=state)  # type: ignore[arg-type]
    kinds = [(e.kind, e.ts_s - T0) for e in out.events]
    assert kinds == [("released", 42), ("ended", 102)]
    assert out.events[-1].ended_at_s == T0 + 102
    wakes = [(c.issued_at_s - T0, c.action, c.miner_ids) for c in out.commands]
    assert wakes == [
        (42, "wake", [f"s1-S21-{i:05d}" for i in range(5)]),  # 30 kW: S21 all on
        (72, "wake", [f"s1-S19-{i:05d}" for i in range(5, 10)]),  # 45 kW
        (102, "wake", [f"s1-S19-{i:05d}" for i in range(5)]),  # 60 kW: whole fleet
    ]
    assert state.event is None
    assert state.asleep == {"S19": 0, "S21": 0}


def test_fleet_that_never_responds_misses_deadline_and_fails() -> None:
    inputs: list[ControllerInput] = [power(T0), dispatch(T0, reduce_to_mw=0.0)]
    inputs += [power(T0 + s) for s in range(1, 201)]  # mining stays at 60 kW
    _, out = run(inputs)
    assert [(e.kind, e.ts_s - T0) for e in out.events] == [("issued", 0), ("updated", 61)]
    late = out.events[-1]
    assert late.deadline_met is False and late.achieved_at_s is None
    assert late.curtailed_wh == 0.0
    site = make_site()
    astate, alerts = alerts_step(
        AlertState(site_id="s1"), site, now_s=T0 + 200, curtailments=out.events
    )
    assert [(a.condition, a.severity, a.state) for a in alerts] == [
        ("curtailment_late", "warning", "firing"),
        ("curtailment_failed", "critical", "firing"),
    ]
    assert alerts[1].started_at_s == T0 + 60 + 120
    # Firing again on the next batch is deduplicated.
    _, again = alerts_step(astate, site, now_s=T0 + 260, curtailments=out.events)
    assert again == []


@pytest.mark.parametrize(
    ("samples", "kinds"),
    [
        ([(0, 59.75), (1, 59.70)], []),  # exactly 59.7 Hz is not below
        ([(0, 59.69)], [("issued", 0)]),
        # Recovery needs >= 59.75 Hz for 10 s.
        # No SitePower comes: the 1 s deadline passes unmet ("updated" at 2 s).
        (
            [(0, 59.69)] + [(s, 59.8) for s in range(1, 12)],
            [("issued", 0), ("updated", 2), ("released", 11)],
        ),
        ([(0, 59.69)] + [(s, 59.72) for s in range(1, 30)], [("issued", 0), ("updated", 2)]),
        (
            [(0, 59.69)]
            + [(s, 59.8) for s in range(1, 6)]
            + [(6, 59.6)]
            + [(s, 59.8) for s in range(7, 12)],
            [("issued", 0), ("updated", 2)],
        ),
    ],
)
def test_under_frequency(samples: list[tuple[int, float]], kinds: list[tuple[str, int]]) -> None:
    inputs: list[ControllerInput] = [
        FrequencySample(source_id="pmu", ts_s=T0 + t, freq_hz=f) for t, f in samples
    ]
    _, out = run(inputs)
    assert [(e.kind, int(e.ts_s - T0)) for e in out.events] == kinds
    if kinds:
        assert out.events[0].deadline_s == T0 + 1  # immediate: 1 s
        assert out.events[0].target_mining_w == 0.0


@pytest.mark.parametrize(
    ("tick", "active"),
    [
        (PEAK_START - 301, False),
        (PEAK_START - 300, True),  # 5 minutes of lead
        (PEAK_END - 1, True),
        (PEAK_END, False),
    ],
)
def test_4cp_window(tick: int, active: bool) -> None:
    state, out = run([Tick(ts_s=tick)])
    assert (state.event is not None) is active
    if active:
        assert out.events[0].reasons == ["4cp"]
        assert out.events[0].deadline_s == (PEAK_START if tick < PEAK_START else tick + 60)


@pytest.mark.parametrize(
    ("second", "released", "target"),
    [
        # AI 70 kW: 70 + 5 + baseline 60 = 135 kW fits under 140 kW: trigger clears.
        (70_000.0, True, None),
        # AI 80 kW: 145 kW would not fit; target 140 - 80 - 5 = 55 kW.
        (80_000.0, False, 55_000.0),
        (100_000.0, False, 35_000.0),
    ],
)
def test_site_limit(second: float, released: bool, target: float | None) -> None:
    # 90 + 5 + 60 = 155 kW > 140 kW: target 140 - 95 = 45 kW, 5 S19 asleep.
    state, out = run([power(T0, ai=90_000.0)])
    (ev,) = out.events
    assert (ev.reasons, ev.target_mining_w) == (["site_limit"], 45_000.0)
    assert asleep_ids(out) == {f"s1-S19-{i:05d}" for i in range(5)}
    held, out = run([power(T0 + 1, ai=second, mining=45_000.0)], state=state)
    assert "released" not in [e.kind for e in out.events]  # minimum dwell: 300 s
    # After the dwell; 135 kW also fits under 140 kW less 2 % (137.2 kW).
    state, out = run([power(T0 + 300, ai=second, mining=45_000.0)], state=held)
    assert ("released" in [e.kind for e in out.events]) is released
    if target is not None:
        assert state.event is not None and state.event.target_mining_w == target


def test_deeper_target_resets_achievement() -> None:
    state, out = run([power(T0), dispatch(T0, reduce_to_mw=0.03), power(T0 + 5, mining=30_000.0)])
    assert out.events[-1].kind == "achieved"
    second = dispatch(T0 + 10, reduce_to_mw=0.0, event_id="dr-2")
    state, out = run([second, power(T0 + 10, mining=30_000.0)], state=state)
    ev = out.events[0]
    assert (ev.kind, ev.target_mining_w, ev.deadline_s, ev.achieved_at_s) == (
        "updated",
        0.0,
        T0 + 70,
        None,
    )


@pytest.mark.parametrize("codec", [msgspec.json, msgspec.msgpack])
def test_state_round_trip(codec: object) -> None:
    first: list[ControllerInput] = [
        power(T0),
        dispatch(T0, reduce_to_mw=0.015),
        price(T0, 70.0),
        power(T0 + 1, mining=40_000.0),
    ]
    rest: list[ControllerInput] = [power(T0 + s, mining=15_000.0) for s in range(2, 70)]
    state, _ = run(first)
    restored = codec.decode(codec.encode(state), type=ControllerState)  # type: ignore[attr-defined]
    assert restored == state
    assert run(rest, state=state)[1] == run(rest, state=restored)[1]


def test_mismatched_site_is_refused(site: SiteConfig) -> None:
    with pytest.raises(ValueError, match="must be the same site"):
        controller_step(ControllerState(site_id="s2"), [], site, fleet_roster(site))


def test_tunable_firmware_gets_power_limits() -> None:
    base = make_site()
    models = [
        msgspec.structs.replace(m, firmware="braiins") if m.model == "S21" else m
        for m in base.asic_models
    ]
    site = msgspec.structs.replace(base, asic_models=models)
    all_s21 = [f"s1-S21-{i:05d}" for i in range(10)]
    # 15 kW: S19 (stock) all asleep; the 10 S21 share 15 kW = 1,500 W each (50% of 3 kW).
    state, out = run([power(T0), dispatch(T0, reduce_to_mw=0.015)], site)
    first = [(c.action, c.priority, c.miner_ids, c.power_limit_w) for c in out.commands]
    assert first == [
        ("sleep", 0, sorted(S19), None),
        ("set_power", 1, all_s21, 1_500.0),
    ]
    # 12 kW: 1,200 W each is below 50%: 4 S21 run at nameplate, 6 sleep.
    deeper = dispatch(T0, reduce_to_mw=0.012, event_id="dr-2")
    state, out = run([deeper, Tick(ts_s=T0 + 1)], site, state=state)
    got = [(c.action, c.miner_ids, c.power_limit_w) for c in out.commands]
    assert got == [("sleep", all_s21[:6], None), ("set_power", all_s21[6:], 3_000.0)]
    # Both end; restore +15 kW: 27 kW = S21 all on at 2,700 W each.
    ends: list[ControllerInput] = [
        dispatch(T0, reduce_to_mw=0.015, end=T0 + 2),
        dispatch(T0, reduce_to_mw=0.012, end=T0 + 2, event_id="dr-2"),
        Tick(ts_s=T0 + 2),
    ]
    state, out = run(ends, site, state=state)
    got = [(c.action, c.miner_ids, c.power_limit_w) for c in out.commands]
    assert got == [("set_power", all_s21, 2_700.0), ("wake", all_s21[:6], None)]
    # Next step, 42 kW: S21 back to nameplate, 4 S19 (12 kW) wake.
    state, out = run([Tick(ts_s=T0 + 32)], site, state=state)
    got = [(c.action, c.miner_ids, c.power_limit_w) for c in out.commands]
    assert got == [("set_power", all_s21, 3_000.0), ("wake", sorted(S19)[6:], None)]
