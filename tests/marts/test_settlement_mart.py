"""The published settlement mart and the audit trail of restatements (no broker: batches go
straight into the store, as the sink writes them)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import count
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from schemas.site import SiteConfig
from streams.marts.configs import ConfigMessage, site_config_frame
from streams.marts.frames import accept_frames, build_frames
from streams.marts.publish import VIEWS_FILE, publish
from streams.marts.store import Batch, open_store, write_batch
from tests.marts.helpers import rt_price, site_config, site_second
from tests.marts.test_publish import FakeGate

DAY = 1_767_225_600  # 2026-01-01 00:00 UTC
HOLE = range(DAY + 100, DAY + 200)  # 100 seconds of the first interval, sent late
CENT = Decimal("0.01")


class Sink:
    """Writes batches the way the sink does, with increasing offsets."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.offsets = count(1)

    def write(self, items: list[tuple[str, Any]],
              configs: list[SiteConfig] | None = None) -> Batch:
        acc = accept_frames(items, {})
        frames = build_frames(acc.items)
        offset = next(self.offsets)
        if configs:
            frames["site_configs"] = site_config_frame(
                [ConfigMessage(c, 0, offset * 100 + i, 0.0) for i, c in enumerate(configs)])
        batch = Batch(frames=frames, offsets={("t", 0): offset})
        write_batch(self.con, batch)
        return batch


def _seconds(seconds: Iterable[int]) -> list[tuple[str, Any]]:
    return [("site.power.v1", site_second("s", ts)) for ts in seconds]


@pytest.fixture
def sink(tmp_path: Path) -> Any:
    con = open_store(tmp_path / "sink.duckdb")
    yield Sink(con)
    con.close()


def _views(marts: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(marts / VIEWS_FILE), read_only=True)


def expected_interval(covered_s: int, price: Decimal, hashprice: Decimal = Decimal(50),
                      contract_mw: int = 200,
                      contract_price: Decimal = Decimal("30.5")) -> dict[str, Decimal]:
    """Independent settlement of one interval of the test site (160 MW through the POI
    meter, 1000 TH/s) covered for ``covered_s`` seconds, from the formulas in DESIGN.md."""
    six, nine = Decimal("0.000001"), Decimal("0.000000001")
    poi = (Decimal(160) * covered_s / 3600).quantize(six)
    forward = Decimal(contract_mw) / 4
    ph_days = (Decimal(covered_s) / 86400).quantize(nine)  # 1 PH/s
    parts = {
        "forward_usd": -(forward * contract_price),
        "rt_sell_back_usd": max(forward - poi, Decimal(0)) * price,
        "rt_purchase_usd": -max(poi - forward, Decimal(0)) * price,
        "mining_revenue_usd": ph_days * hashprice,
    }
    cents = {k: v.quantize(CENT, rounding=ROUND_HALF_EVEN) for k, v in parts.items()}
    return {"poi_mwh": poi, **cents, "net_usd": sum(cents.values(), Decimal(0))}


def _settlement(marts: Path) -> dict[int, dict[str, Any]]:
    with _views(marts) as v:
        frame = v.sql("SELECT * FROM settlement ORDER BY interval_start_s").pl()
    return {r["interval_start_s"]: r for r in frame.iter_rows(named=True)}


def _revisions(marts: Path) -> list[dict[str, Any]]:
    with _views(marts) as v:
        frame = v.sql("SELECT * FROM mart_revisions ORDER BY ALL").pl()
    return list(frame.iter_rows(named=True))


def test_settlement_is_published_with_exact_money(sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    sink.write(_seconds(range(DAY, DAY + 2701)) + [("grid.prices.v1", rt_price(DAY, 42.5)),
                                                   ("grid.prices.v1",
                                                    rt_price(DAY + 900, -12.25))],
               configs=[site_config("s")])
    calls: list[tuple[str, int]] = []
    res = publish(sink.con, marts, gate=FakeGate(calls=calls), now_s=DAY + 3000)
    assert ("settlement", 2) in calls and not res.blocked
    got = _settlement(marts)
    assert sorted(got) == [DAY, DAY + 900]  # the third interval has no price yet
    for start, price in [(DAY, Decimal("42.5")), (DAY + 900, Decimal("-12.25"))]:
        want = expected_interval(900, price)
        assert {k: got[start][k] for k in want} == want
        assert got[start]["rt_price_usd_per_mwh"] == price
        assert got[start]["hashprice_usd_per_ph_day"] == Decimal(50)
    assert got[DAY]["net_usd"] == Decimal("-1525.00") + Decimal("425.00") + Decimal("0.52")
    assert _revisions(marts) == []


def test_late_seconds_restate_energy_and_leave_one_revision_each(sink: Sink,
                                                                 tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    on_time = [ts for ts in range(DAY, DAY + 1801) if ts not in HOLE]
    sink.write(_seconds(on_time) + [("grid.prices.v1", rt_price(DAY, 42.5)),
                                    ("grid.prices.v1", rt_price(DAY + 900, 42.5))],
               configs=[site_config("s")])
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2000)  # generation 1
    with _views(marts) as v:
        before = v.execute("SELECT total_mwh, missing_s FROM interval_energy "
                           "WHERE interval_start_s = ?", [DAY]).fetchone()
    # 100 s missing: 160 MW x 800 s (the hold across the gap stops at 1 s).
    assert before == (pytest.approx(160 * 800 / 3600, rel=1e-12), 100.0)
    # The POI meter has no reading for those 100 s: the interval is held, not settled as if
    # the site drew nothing then (which would sell back 100 s of contract).
    held = _settlement(marts)[DAY]
    assert (held["settled"], held["net_usd"], held["rt_sell_back_usd"]) == (False, None, None)
    assert held["held_reason"].startswith("POI meter gap: 100 s")

    late = sink.write(_seconds(HOLE))
    res = publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2100)  # generation 2
    assert res.generation == 2 and res.revisions == 2
    with _views(marts) as v:
        after = v.execute("SELECT total_mwh, missing_s FROM interval_energy "
                          "WHERE interval_start_s = ?", [DAY]).fetchone()
    assert after == (pytest.approx(160 * 900 / 3600, rel=1e-12), 0.0)
    settled = _settlement(marts)[DAY]
    assert settled["net_usd"] == expected_interval(900, Decimal("42.5"))["net_usd"]

    revs = _revisions(marts)
    assert [(r["mart"], r["site_id"], r["key_start_s"], r["generation_before"],
             r["generation_after"], r["revised_at_s"]) for r in revs] == [
        ("interval_energy", "s", DAY, 1, 2, DAY + 2100.0),
        ("settlement", "s", DAY, 1, 2, DAY + 2100.0)]
    energy = dict(zip(revs[0]["changed_columns"],
                      zip(revs[0]["old_values"], revs[0]["new_values"], strict=True),
                      strict=True))
    assert float(energy["total_mwh"][0]) == pytest.approx(before[0], rel=1e-15)
    assert float(energy["total_mwh"][1]) == pytest.approx(after[0], rel=1e-15)
    assert energy["missing_s"] == ("100.0", "0.0") and energy["gap_count"] == ("1", "0")
    assert "site_id" not in energy and "interval_start_s" not in energy
    money = dict(zip(revs[1]["changed_columns"],
                     zip(revs[1]["old_values"], revs[1]["new_values"], strict=True),
                     strict=True))
    want_new = expected_interval(900, Decimal("42.5"))
    assert money["net_usd"] == (None, str(want_new["net_usd"]))  # held, then settled
    assert money["settled"] == ("false", "true")
    assert "rt_price_usd_per_mwh" not in money and "forward_usd" not in money
    untouched = [r for r in revs if r["key_start_s"] != DAY]
    assert untouched == []  # the second interval did not change

    # The same late batch again (a replay), then a publication: nothing changes.
    write_batch(sink.con, late)
    res = publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2200)
    assert res.generation == 3 and res.revisions == 0
    assert _revisions(marts) == revs
    assert sink.con.execute("SELECT count(*) FROM mart_revisions").fetchone() == (2,)


def test_price_arriving_later_settles_then_a_corrected_price_is_a_revision(
        sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    sink.write(_seconds(range(DAY, DAY + 1801)) + [("grid.prices.v1", rt_price(DAY, 42.5))],
               configs=[site_config("s")])
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2000)
    assert sorted(_settlement(marts)) == [DAY]
    sink.write([("grid.prices.v1", rt_price(DAY + 900, 20.0))])
    res = publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2100)
    assert sorted(_settlement(marts)) == [DAY, DAY + 900] and res.revisions == 0
    sink.write([("grid.prices.v1", rt_price(DAY + 900, 21.0))])  # the market restates it
    res = publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2200)
    revs = _revisions(marts)
    assert res.revisions == 1 and len(revs) == 1
    rev = revs[0]
    assert (rev["mart"], rev["key_start_s"], rev["generation_before"],
            rev["generation_after"]) == ("settlement", DAY + 900, 2, 3)
    changed = dict(zip(rev["changed_columns"], zip(rev["old_values"], rev["new_values"],
                                                   strict=True), strict=True))
    assert changed["rt_price_usd_per_mwh"] == ("20.000000", "21.000000")
    # 10 MWh sold back: 200.00 -> 210.00.
    assert changed["rt_sell_back_usd"] == ("200.00", "210.00")


def test_config_versions_apply_from_their_updated_s(sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    prices = [("grid.prices.v1", rt_price(DAY + k * 900, 42.5)) for k in range(2)]
    sink.write(_seconds(range(DAY, DAY + 1801)) + prices,
               configs=[site_config("s", updated_s=DAY - 86400.0, hashprice=50.0),
                        site_config("s", updated_s=DAY + 900.0, hashprice=62.0,
                                    contract_mw=100.0)])
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2000)
    got = _settlement(marts)
    assert got[DAY]["hashprice_usd_per_ph_day"] == Decimal(50)
    assert got[DAY + 900]["hashprice_usd_per_ph_day"] == Decimal(62)
    second = expected_interval(900, Decimal("42.5"), hashprice=Decimal(62), contract_mw=100)
    assert {k: got[DAY + 900][k] for k in second} == second
    with _views(marts) as v:  # both versions are kept and published, with their position
        assert v.execute("SELECT updated_s, kafka_offset FROM site_configs ORDER BY ALL"
                         ).fetchall() == [(DAY - 86400.0, 100), (DAY + 900.0, 101)]


def test_config_arriving_after_the_energy_settles_the_published_days(sink: Sink,
                                                                     tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    sink.write(_seconds(range(DAY, DAY + 901)) + [("grid.prices.v1", rt_price(DAY, 42.5))])
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 1000)
    assert _settlement(marts) == {}
    sink.write([], configs=[site_config("s", updated_s=DAY + 5000.0)])
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 5001)
    assert list(_settlement(marts)) == [DAY]


def test_settlement_is_blocked_with_its_energy(sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    sink.write(_seconds(range(DAY, DAY + 901)) + [("grid.prices.v1", rt_price(DAY, 42.5))],
               configs=[site_config("s")])
    sent: list[Any] = []

    def energy_fails(mart: str, frame: pl.DataFrame) -> Any:
        return FakeGate(ok=mart != "interval_energy")(mart, frame)

    res = publish(sink.con, marts, gate=energy_fails, alert=sent.append, now_s=DAY + 1000)
    assert res.blocked == ["interval_energy:2026-01-01", "settlement:2026-01-01"]
    assert [a.subject for a in sent] == res.blocked
    assert "interval_energy failed" in (marts / "_gates" /
                                        "settlement-2026-01-01-g000001.txt").read_text()
    assert _settlement(marts) == {}


@pytest.mark.parametrize("crash_at", ["manifest", "views"])
def test_a_crashed_publication_records_each_revision_once(sink: Sink, tmp_path: Path,
                                                          monkeypatch: Any,
                                                          crash_at: str) -> None:
    """Before its manifest, a generation is not published: its revision rows are replaced
    when the next publication reuses its number. After it, they stand, and the next
    publication finds nothing new to record."""
    from streams.marts import publish as pub

    marts = tmp_path / "marts"
    on_time = [ts for ts in range(DAY, DAY + 901) if ts not in HOLE]
    sink.write(_seconds(on_time))
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 1000)
    sink.write(_seconds(HOLE))
    real_write = pub._atomic_write_text

    def crash_manifest(path: Path, text: str) -> None:
        if path.name.startswith("gen-"):
            raise OSError("disk full while writing the manifest")
        real_write(path, text)

    def crash_views(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full while writing the views")

    if crash_at == "manifest":
        monkeypatch.setattr(pub, "_atomic_write_text", crash_manifest)
    else:
        monkeypatch.setattr(pub, "build_views", crash_views)
    with pytest.raises(OSError, match="disk full"):
        publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 1100)
    monkeypatch.undo()
    res = publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 1200)
    want_at = DAY + 1200.0 if crash_at == "manifest" else DAY + 1100.0
    assert sink.con.execute("SELECT mart, generation_after, revised_at_s FROM mart_revisions"
                            ).fetchall() == [("interval_energy", 2, want_at)]
    assert res.revisions == (1 if crash_at == "manifest" else 0)
    assert [(r["mart"], r["generation_after"]) for r in _revisions(marts)] == [
        ("interval_energy", 2)]


@pytest.mark.slow
def test_real_gate_passes_the_settlement(sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    sink.write(_seconds(range(DAY, DAY + 1801)) + [("grid.prices.v1", rt_price(DAY, 42.5)),
                                                   ("grid.prices.v1",
                                                    rt_price(DAY + 900, 9000.0))],
               configs=[site_config("s")])
    res = publish(sink.con, marts, now_s=DAY + 2000)
    assert not res.blocked
    report = marts / "_gates" / "settlement-2026-01-01-g000001.txt"
    assert "gate settlement: PASS" in report.read_text()
    assert len(_settlement(marts)) == 2
