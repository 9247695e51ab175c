"""The comparison finds every kind of difference, and nothing where there is none."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import msgspec
import polars as pl
import pytest

from streams.faults.compare import (
    Comparison,
    Marts,
    compare_events,
    compare_money,
    compare_power,
    reconcile,
)
from streams.faults.scenario import Message, Scenario, fault_site
from streams.faults.truth import Truth


def second(ts: int, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"site_id": "s", "ts_s": ts, "ai_w": 1.0e5, "mining_w": 8.0e5,
                           "overhead_w": 7.0e4, "total_w": 9.7e5, "poi_meter_w": 9.7e5,
                           "contract_w": 1.15e6, "surplus_w": 9.8e5, "hashrate_ths": 3.9e4,
                           "readings": 465, "late_readings": 0, "flags": []}
    row.update(kw)
    return row


TRUTH = [second(t) for t in range(10, 14)]

POWER_CASES: list[tuple[str, list[dict[str, Any]], list[str], int]] = [
    ("equal", [dict(r) for r in TRUTH], [], 0),
    ("float noise within 1e-9", [second(t, ai_w=1.0e5 * (1 + 1e-12)) for t in range(10, 14)],
     [], 0),
    ("flags null vs empty", [second(t, flags=None) for t in range(10, 14)], [], 0),
    ("a second missing", TRUTH[:3], ["site_power seconds missing"], 0),
    ("an extra second", [*TRUTH, second(14)], ["not in the truth"], 1),
    ("fewer readings", [*TRUTH[:3], second(13, readings=251)], ["differ"], 0),
    ("late readings", [*TRUTH[:3], second(13, late_readings=7)], ["differ"], 0),
    ("1 W off", [*TRUTH[:3], second(13, mining_w=8.0e5 + 1.0)], ["differ"], 0),
    ("meter missing", [*TRUTH[:3], second(13, poi_meter_w=None)], ["differ"], 0),
]


@pytest.mark.parametrize(("name", "got", "diffs", "extra"), POWER_CASES,
                         ids=[c[0] for c in POWER_CASES])
def test_compare_power(name: str, got: list[dict[str, Any]], diffs: list[str],
                       extra: int) -> None:
    out = Comparison()
    compare_power(TRUTH, got, out)
    assert len(out.differences) == len(diffs)
    for d, want in zip(out.differences, diffs, strict=True):
        assert want in d
    assert (out.extra_rows, out.duplicates) == (extra, 0)


def ev(kind: str, ts: float, **kw: Any) -> dict[str, Any]:
    return {"event_id": "s/curtailment/1", "site_id": "s", "kind": kind, "ts_s": ts,
            "reasons": ["site_limit"], "target_mining_w": 5.0e5, **kw}


EVENTS = [ev("issued", 60.0), ev("achieved", 61.0), ev("ended", 100.0)]

EVENT_CASES: list[tuple[str, list[dict[str, Any]], int, int]] = [
    ("equal", list(EVENTS), 0, 0),
    ("equal, reasons as tuple", [ev("issued", 60.0, reasons=("site_limit",)), *EVENTS[1:]],
     0, 0),
    ("one missing", EVENTS[:2], 1, 0),
    ("one more (re-issued later)", [*EVENTS, ev("issued", 71.0)], 1, 1),
    ("other target", [ev("issued", 60.0, target_mining_w=4.0e5), *EVENTS[1:]], 1, 0),
    ("other reasons", [ev("issued", 60.0, reasons=["economic"]), *EVENTS[1:]], 1, 0),
]


@pytest.mark.parametrize(("name", "got", "n_diffs", "extra"), EVENT_CASES,
                         ids=[c[0] for c in EVENT_CASES])
def test_compare_events(name: str, got: list[dict[str, Any]], n_diffs: int,
                        extra: int) -> None:
    out = Comparison()
    compare_events("curtailment_events", EVENTS, got, out)
    assert len(out.differences) == n_diffs, out.differences
    assert (out.extra_rows, out.duplicates) == (extra, 0)


def money(poi_mwh: float, net: str) -> pl.DataFrame:
    energy = {c: 0.01 for c in ("ai_mwh", "mining_mwh", "overhead_mwh", "total_mwh",
                                 "contract_mwh", "unabsorbed_mwh", "over_contract_mwh")}
    usd = {c: Decimal("1.00") for c in ("forward_usd", "rt_sell_back_usd",
                                         "rt_purchase_usd", "mining_revenue_usd")}
    return pl.DataFrame([{"site_id": "s", "interval_start_s": 900, **energy,
                          "poi_mwh": poi_mwh, **usd, "net_usd": Decimal(net)}])


@pytest.mark.parametrize(
    ("poi", "net", "n_diffs"),
    [(0.0711248, "-1.55", 0),
     (0.0711248 + 0.4e-6, "-1.55", 0),  # 0.4 Wh: the same to the watt-hour
     (0.0711248 + 2e-6, "-1.55", 1),  # 2 Wh apart
     (0.0711248, "-1.56", 1)],  # a cent apart
    ids=["equal", "under a Wh", "2 Wh", "1 cent"],
)
def test_compare_money_to_the_wh_and_the_cent(poi: float, net: str, n_diffs: int) -> None:
    out = Comparison()
    compare_money(money(0.0711248, "-1.55"), money(poi, net), out)
    assert len(out.differences) == n_diffs, out.differences


def test_an_unknown_poi_on_both_sides_agrees_and_on_one_side_differs() -> None:
    both = Comparison()
    compare_money(money(None, "-1.55"), money(None, "-1.55"), both)  # type: ignore[arg-type]
    assert both.differences == []
    one = Comparison()
    compare_money(money(0.0711248, "-1.55"), money(None, "-1.55"), one)  # type: ignore[arg-type]
    assert len(one.differences) == 1, one.differences


def _scenario() -> Scenario:
    sc = Scenario(site=fault_site(), start_s=0, seconds=2)
    sc.messages = [Message("telemetry.gpu.v1", b"k", b"{}", 0),
                   Message("telemetry.gpu.v1", b"k", b"{}", 1),
                   Message("telemetry.gpu.v1", b"x", b"{bad", 1, "undecodable")]
    return sc


def _truth(readings: int) -> Truth:
    from schemas.events import SitePower
    p = SitePower(site_id="faults", ts_s=0, ai_w=0.0, mining_w=0.0, overhead_w=0.0,
                  total_w=0.0, poi_meter_w=None, contract_w=0.0, surplus_w=0.0,
                  hashrate_ths=0.0, readings=readings, emitted_s=0.0)
    return Truth(powers=[p], surplus=[], curtailments=[], commands=[], readings={}, frames={})


@pytest.mark.parametrize(
    ("frames", "stale", "sink_letters", "agent_letters", "offsets", "lost", "dups", "n_diffs"),
    [
        (2, 0, {("ns.telemetry.gpu.v1", 0, 2): 1}, {("ns.telemetry.gpu.v1", 0, 2): 1}, 3,
         0, 0, 0),
        (2, 0, {("ns.telemetry.gpu.v1", 0, 2): 3}, {("ns.telemetry.gpu.v1", 0, 2): 2}, 3,
         0, 0, 0),  # dead letters resent after a crash: counted once
        (1, 0, {("ns.telemetry.gpu.v1", 0, 2): 1}, {("ns.telemetry.gpu.v1", 0, 2): 1}, 3,
         1, 0, 1),  # a frame lost
        (2, 1, {("ns.telemetry.gpu.v1", 0, 2): 1}, {("ns.telemetry.gpu.v1", 0, 2): 1}, 3,
         0, 1, 1),  # a frame seen twice
        (2, 0, {}, {("ns.telemetry.gpu.v1", 0, 2): 1}, 3, 1, 0, 1),  # letter missing
        (2, 0, {("ns.telemetry.gpu.v1", 0, 2): 1}, {}, 3, 0, 0, 1),  # agents kept it
        (2, 0, {("ns.telemetry.gpu.v1", 0, 2): 1}, {("ns.telemetry.gpu.v1", 0, 2): 1}, 2,
         0, 0, 1),  # sink offsets short of the end
    ],
    ids=["all accounted", "letters resent", "lost frame", "frame twice", "letter missing",
         "agents did not reject", "offsets short"],
)
def test_reconcile_counts_every_message(frames: int, stale: int,
                                        sink_letters: dict[tuple[str, int, int], int],
                                        agent_letters: dict[tuple[str, int, int], int],
                                        offsets: int, lost: int, dups: int,
                                        n_diffs: int) -> None:
    marts = Marts(site_power=[{"readings": 64}], events={}, prices=[],
                  sources=[{"topic": "telemetry.gpu.v1", "frames": frames,
                            "stale_frames": stale}],
                  offsets={"ns.telemetry.gpu.v1": offsets})
    out = Comparison()
    reconcile(_scenario(), "ns", marts, Counter(sink_letters), Counter(agent_letters),
              _truth(64), out)
    assert (out.lost, out.duplicates) == (lost, dups)
    assert len(out.differences) == n_diffs, out.differences
    assert out.produced == 3


def test_reconcile_flags_readings_missing_from_site_power() -> None:
    marts = Marts(site_power=[{"readings": 60}], events={}, prices=[],
                  sources=[{"topic": "telemetry.gpu.v1", "frames": 2, "stale_frames": 0}],
                  offsets={"ns.telemetry.gpu.v1": 3})
    out = Comparison()
    letter = Counter({("ns.telemetry.gpu.v1", 0, 2): 1})
    reconcile(_scenario(), "ns", marts, letter, letter, _truth(64), out)
    assert out.differences == ["site_power holds 60 readings, the truth 64"]


def test_truth_rows_keep_no_version_field() -> None:
    from schemas.events import Alert
    from streams.faults.compare import _event_row
    a = Alert(alert_id="a", site_id="s", condition="late_data", subject="x", severity="info",
              state="firing", started_at_s=1.0, message="m")
    assert "v" not in _event_row(a) and _event_row(a)["alert_id"] == "a"
    assert msgspec.to_builtins(a)["v"] == 1
