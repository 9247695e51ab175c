"""A bad interval does not hold its day: rows that fail a row-level expectation are published
provisional with why (and what is built on them too); a partition the gate holds raises one
data_quality alert that resolves when the partition publishes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest

from streams.marts.publish import (
    HELD_NOTE,
    PROVISIONAL_NOTE,
    Manifest,
    load_manifest,
    publish,
    status_notes,
)
from tests.marts.helpers import rt_price, site_config, site_second
from tests.marts.test_publish import FakeGate
from tests.marts.test_settlement_mart import DAY, Sink, _views
from tests.marts.test_settlement_mart import sink as sink  # noqa: F401 - the fixture
from transforms.gates import ExpectationOutcome, GateResult, ProvisionalRow

BAD = DAY + 900  # the second interval of the day


@dataclass
class RowGate:
    """Fails ``reconciled`` for the ``bad`` intervals of interval_energy, as GX would."""

    bad: set[int] = field(default_factory=lambda: {BAD})

    def __call__(self, mart: str, frame: pl.DataFrame) -> GateResult:
        rows: tuple[ProvisionalRow, ...] = ()
        if mart == "interval_energy":
            rows = tuple(
                ProvisionalRow(s, k, ("reconciled is false",))
                for s, k in frame.select("site_id", "interval_start_s").iter_rows()
                if k in self.bad
            )
        outcome = ExpectationOutcome("expect_column_values_to_be_in_set", "reconciled",
                                     not rows, len(rows), "", row_level=True)
        return GateResult(mart, not rows, frame.height, [outcome], provisional=rows)


def _day(sink: Sink, seconds: int = 2701) -> None:
    items: list[tuple[str, Any]] = [("site.power.v1", site_second("s", DAY + i))
                                    for i in range(seconds)]
    items += [("grid.prices.v1", rt_price(DAY + k * 900, 40.0)) for k in range(3)]
    sink.write(items, configs=[site_config("s")])


def test_a_bad_interval_is_provisional_and_the_rest_of_the_day_publishes(
        sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    _day(sink)
    res = publish(sink.con, marts, gate=RowGate(), now_s=DAY + 3000)
    assert res.blocked == []
    assert [p.split(": ")[0] for p in res.provisional] == [
        f"interval_energy:s:{BAD}", f"settlement:s:{BAD}"]
    with _views(marts) as v:
        assert v.execute("SELECT count(*) FROM settlement").fetchone() == (3,)
        status = v.execute("SELECT mart, key_start_s, status, reason FROM marts_status "
                           "ORDER BY mart").fetchall()
    assert status == [
        ("interval_energy", BAD, "provisional", "reconciled is false"),
        ("settlement", BAD, "provisional", "interval_energy provisional: reconciled is false"),
    ]
    assert load_manifest(marts).provisional[0]["key_start_s"] == BAD
    # The interval repaired (e.g. a restatement): no longer provisional.
    sink.write([("site.power.v1", site_second("s", BAD))])
    publish(sink.con, marts, gate=RowGate(bad=set()), now_s=DAY + 3100)
    assert load_manifest(marts).provisional == []


def test_a_held_partition_alerts_once_and_resolves_when_it_publishes(
        sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    _day(sink, 1801)
    sent: list[Any] = []
    first = publish(sink.con, marts, gate=FakeGate(ok=False), alert=sent.append,
                    now_s=DAY + 2000)
    assert "interval_energy:2026-01-01" in first.blocked
    held = {a.subject for a in sent}
    # Every later publication of the held day (every 30 s in a run) adds no alert.
    for k in range(1, 4):
        sink.write([("site.power.v1", site_second("s", DAY + 1801 + k))])
        res = publish(sink.con, marts, gate=FakeGate(ok=False), alert=sent.append,
                      now_s=DAY + 2000 + 30 * k)
        assert "interval_energy:2026-01-01" in res.blocked and not res.alerts
    assert len(sent) == len(held) and all(a.state == "firing" for a in sent)
    assert load_manifest(marts).held["interval_energy:2026-01-01"]["since_s"] == DAY + 2000
    sink.write([("site.power.v1", site_second("s", DAY + 1900))])
    publish(sink.con, marts, gate=FakeGate(), alert=sent.append, now_s=DAY + 2500)
    resolved = [a for a in sent if a.state == "resolved"]
    firing = {a.alert_id: a for a in sent if a.state == "firing"}
    assert {a.alert_id for a in resolved} == set(firing)  # each one resolves, same id
    assert all(a.started_at_s == DAY + 2000 and a.ended_at_s == DAY + 2500 for a in resolved)
    assert load_manifest(marts).held == {}
    manifest = json.loads(sorted((marts / "_manifests").glob("*.json"))[-1].read_text())
    assert manifest["held"] == {}


@pytest.mark.slow
def test_real_gate_publishes_an_unreconciled_interval_provisional(
        sink: Sink, tmp_path: Path) -> None:
    """transforms.gates.run_gate (GX): the POI meter reads 50 % above the devices in one
    interval; that interval is provisional, the other two publish as they are."""
    marts = tmp_path / "marts"
    items: list[tuple[str, Any]] = []
    for i in range(2701):
        sp = site_second("s", DAY + i)
        if BAD <= DAY + i < BAD + 900:
            sp = msgspec.structs.replace(sp, poi_meter_w=sp.total_w * 1.5)
        items.append(("site.power.v1", sp))
    items += [("grid.prices.v1", rt_price(DAY + k * 900, 40.0)) for k in range(3)]
    sink.write(items, configs=[site_config("s")])
    res = publish(sink.con, marts, now_s=DAY + 3000)
    assert res.blocked == []
    energy = [p for p in res.provisional if p.startswith("interval_energy:")]
    assert energy == [f"interval_energy:s:{BAD}: reconciled is false"]
    with _views(marts) as v:
        assert v.execute("SELECT count(*) FROM interval_energy").fetchone() == (3,)
        assert v.execute("SELECT count(*) FROM settlement").fetchone() == (3,)


def test_notes_and_report_status_say_held_and_provisional_not_missing() -> None:
    from streams.reports.render import _status

    m = Manifest(
        4, DAY, {},
        {"interval_energy:2026-01-01": {"since_s": DAY + 600, "reason": "duplicate keys",
                                         "report": "r.txt"},
         "interval_energy:2026-01-03": {"since_s": DAY, "reason": "x", "report": "y"}},
        [{"mart": "settlement", "site_id": "s", "key_start_s": BAD, "reason": "why"},
         {"mart": "settlement", "site_id": "other", "key_start_s": BAD, "reason": "no"}],
    )
    notes = status_notes(m, DAY, DAY + 86_400, "s")
    assert notes == [
        f"{HELD_NOTE} interval_energy for 2026-01-01 (UTC date) since 2026-01-01T00:10:00Z: "
        "duplicate keys. Its rows are not published (the previous version, if any, stays) "
        "although their data was received; report r.txt",
        f"{PROVISIONAL_NOTE} settlement s 2026-01-01T00:15:00Z: why",
    ]
    status = _status(True, 76, "interval(s)", notes)
    assert "1 partition(s) held back by the publication's quality gate" in status
    assert "76 interval(s) without published data: held back or not received" in status
    assert "some rows published provisional" in status
    assert _status(True, 0, "interval(s)") == "Status: all quality gates passed; complete."
