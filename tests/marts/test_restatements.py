"""Late readings restate: a restated second replaces the stored one in the batch's own
transaction, with its before and after audited (``power_restatements``, then
``mart_revisions`` at publication), and the money of its interval follows (no broker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import msgspec
import polars as pl
import pytest

from schemas.events import SitePower
from schemas.restatement import SitePowerRestatement, check_restatement
from streams.marts.publish import publish
from streams.marts.revisions import restated_rows
from streams.marts.store import Batch, write_batch
from tests.marts.helpers import rt_price, site_config, site_second
from tests.marts.test_publish import FakeGate
from tests.marts.test_settlement_mart import DAY, Sink, _views
from tests.marts.test_settlement_mart import sink as sink  # noqa: F401 - the fixture

LATE = DAY + 1000  # a second of the second interval


def restatement(second: SitePower, extra_mining_w: float, late: int) -> SitePowerRestatement:
    """``second`` with ``late`` readings more of mining (and at the POI meter)."""
    power = msgspec.structs.replace(
        second,
        mining_w=second.mining_w + extra_mining_w,
        total_w=second.total_w + extra_mining_w,
        poi_meter_w=(second.poi_meter_w or 0.0) + extra_mining_w,
        readings=second.readings + late,
        late_readings=late,
    )
    return SitePowerRestatement(site_id=second.site_id, ts_s=second.ts_s, power=power,
                                late_readings=late, restated_at_s=second.ts_s + 30.0)


def restated_batch(items: list[SitePowerRestatement], offset: int) -> Batch:
    rows = restated_rows([r.power for r in items]).with_columns(
        pl.lit("site.power.restated.v1").alias("_topic"), pl.lit(0).alias("_partition"),
        pl.lit(offset).alias("_offset"),
        pl.Series("_late_readings", [r.late_readings for r in items]))
    return Batch(frames={}, offsets={("site.power.restated.v1", 0): offset + 1}, restated=rows)


def _day(sink: Sink) -> None:
    items: list[tuple[str, Any]] = [("site.power.v1", site_second("s", DAY + i))
                                    for i in range(2701)]
    items += [("grid.prices.v1", rt_price(DAY + k * 900, 40.0)) for k in range(3)]
    sink.write(items, configs=[site_config("s")])


def _row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return tuple(row)


def test_a_restated_second_replaces_the_stored_one_and_is_audited(
        sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    _day(sink)
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 3000)
    with _views(marts) as v:
        before_mwh = _row(v, f"SELECT mining_mwh FROM interval_energy "
                             f"WHERE interval_start_s = {DAY + 900}")[0]
        before_usd = _row(v, f"SELECT net_usd FROM settlement "
                             f"WHERE interval_start_s = {DAY + 900}")[0]
    write_batch(sink.con, restated_batch([restatement(site_second("s", LATE), 3.6e9, 20)], 7))
    stored = _row(sink.con, f"SELECT mining_w, late_readings, flags FROM site_power "
                            f"WHERE ts_s = {LATE}")
    assert stored == (50e6 + 3.6e9, 20, ["restated"])
    audit = _row(sink.con, "SELECT kafka_offset, changed_columns, old_values, new_values "
                           "FROM power_restatements")
    assert audit[0] == 7
    changed = dict(zip(audit[1], zip(audit[2], audit[3], strict=True), strict=True))
    assert changed["mining_w"] == ("50000000.0", "3650000000.0")
    assert changed["late_readings"] == ("0", "20")
    # The offset went in with the row: a restarted sink resumes after it.
    assert _row(sink.con, "SELECT next_offset FROM sink_offsets WHERE topic = "
                          "'site.power.restated.v1'") == (8,)

    res = publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 3100)
    with _views(marts) as v:
        after_mwh = _row(v, f"SELECT mining_mwh FROM interval_energy "
                            f"WHERE interval_start_s = {DAY + 900}")[0]
        after_usd = _row(v, f"SELECT net_usd FROM settlement "
                            f"WHERE interval_start_s = {DAY + 900}")[0]
        revised = v.execute("SELECT mart, key_start_s, generation_before, generation_after "
                            "FROM mart_revisions ORDER BY mart").fetchall()
    assert after_mwh == pytest.approx(before_mwh + 3.6e9 / 3.6e9)  # 3.6 GW for 1 s = 1 MWh
    assert after_usd != before_usd
    assert revised == [("interval_energy", DAY + 900, 1, 2), ("settlement", DAY + 900, 1, 2),
                       ("site_power", LATE, 1, 2)]
    assert res.revisions == 3
    # The original second delivered again (at-least-once upstream) does not undo it.
    sink.write([("site.power.v1", site_second("s", LATE))])
    assert _row(sink.con, f"SELECT mining_w FROM site_power WHERE ts_s = {LATE}") == (
        50e6 + 3.6e9,)


def test_a_restatement_before_its_second_is_kept(sink: Sink) -> None:
    """The restated topic is read ahead of site.power.v1: the original arrives second."""
    write_batch(sink.con, restated_batch([restatement(site_second("s", LATE), 1e6, 2)], 0))
    sink.write([("site.power.v1", site_second("s", LATE))])
    assert _row(sink.con, f"SELECT mining_w FROM site_power WHERE ts_s = {LATE}") == (51e6,)
    assert _row(sink.con, "SELECT changed_columns FROM power_restatements") == (None,)


def test_the_horizon_and_the_shape_are_checked() -> None:
    r = restatement(site_second("s", LATE), 1e6, 2)
    assert check_restatement(r, horizon_s=60.0) is None
    late = msgspec.structs.replace(r, restated_at_s=LATE + 61.0)
    assert "beyond the restatement horizon of 60 s" in str(check_restatement(late, 60.0))
    other = msgspec.structs.replace(r, ts_s=LATE + 1)
    assert "carries the power of s/" in str(check_restatement(other))
