"""A POI meter gap in the marts: the interval is estimated from the sub-meters and the
overhead model, flagged, published provisional with why and settled on the estimate; when
the real readings arrive (a restatement of those seconds) it is recomputed, and the change is
a ``mart_revisions`` row like any restatement (no broker: batches go straight to the store)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest

from schemas.restatement import SitePowerRestatement
from streams.marts.publish import publish
from streams.marts.store import write_batch
from tests.marts.helpers import rt_price, site_config, site_second
from tests.marts.test_restatements import restated_batch
from tests.marts.test_settlement_mart import DAY, Sink, _views, expected_interval
from tests.marts.test_settlement_mart import sink as sink  # noqa: F401 - the fixture
from transforms.gates import SPECS, ExpectationOutcome, GateResult, ProvisionalRow, row_reasons

SILENT = range(DAY + 100, DAY + 130)  # 30 s of the first interval without a POI reading
CONFIG = site_config("s")
MODEL_W = CONFIG.overhead_fixed_mw * 1e6 + CONFIG.overhead_fraction * (100e6 + 50e6)


def row_gate(mart: str, frame: pl.DataFrame) -> GateResult:
    """The row-level rules of ``transforms.gates`` (what GX would flag), without GX."""
    rows = tuple(
        ProvisionalRow(str(s), int(k), tuple(r))
        for s, k, r in row_reasons(SPECS[mart], frame).iter_rows()
    )
    outcome = ExpectationOutcome(
        "expect_column_values_to_be_in_set", "rows", not rows, len(rows), "", row_level=True
    )
    return GateResult(mart, not rows, frame.height, [outcome], provisional=rows)


def _silent_second(ts: int) -> Any:
    # As the power stage emits it without the POI meter: overhead from the site's model.
    return site_second("s", ts, overhead_w=MODEL_W, poi=False)


def _status(marts: Path) -> dict[tuple[str, int], str]:
    with _views(marts) as v:
        rows = v.execute("SELECT mart, key_start_s, reason FROM marts_status").fetchall()
    return {(m, k): r for m, k, r in rows}


def _one(marts: Path, sql: str) -> dict[str, Any]:
    with _views(marts) as v:
        frame: pl.DataFrame = v.sql(sql).pl()
    assert frame.height == 1, sql
    return frame.row(0, named=True)


def test_a_poi_gap_is_estimated_provisional_then_restated_by_real_readings(
    sink: Sink, tmp_path: Path
) -> None:
    marts = tmp_path / "marts"
    items: list[tuple[str, Any]] = [
        ("site.power.v1", _silent_second(ts) if ts in SILENT else site_second("s", ts))
        for ts in range(DAY, DAY + 1801)
    ]
    items += [("grid.prices.v1", rt_price(DAY + k * 900, 42.5)) for k in range(2)]
    sink.write(items, configs=[CONFIG])
    publish(sink.con, marts, gate=row_gate, now_s=DAY + 2000)  # generation 1

    energy_sql = f"SELECT * FROM interval_energy WHERE interval_start_s = {DAY}"
    money_sql = f"SELECT * FROM settlement WHERE interval_start_s = {DAY}"
    est = _one(marts, energy_sql)
    # Independently: 870 s through the meter at 160 MW, 30 s of AI 100 + mining 50 MW plus
    # the model's overhead (fixed + fraction x 150 MW).
    want_mwh = (
        870 * 160e6 + 30 * (150e6 * (1 + CONFIG.overhead_fraction) + CONFIG.overhead_fixed_mw * 1e6)
    ) / 3.6e9
    assert est["poi_mwh"] == pytest.approx(want_mwh, rel=1e-12)
    assert (est["poi_estimated"], est["poi_estimated_s"], est["poi_complete"]) == (True, 30, False)
    status = _status(marts)
    assert "poi_mwh estimated: 30 s without a POI reading" in status[("interval_energy", DAY)]
    assert status[("settlement", DAY)].startswith("interval_energy provisional: ")
    assert ("interval_energy", DAY + 900) not in status  # the metered interval is final
    money = _one(marts, money_sql)
    # Settled on the estimate (not held, not zero): exact money on the estimated MWh.
    assert (money["settled"], money["held_reason"]) == (True, None)
    assert money["poi_mwh"] == Decimal(str(round(want_mwh, 6)))
    assert money["rt_sell_back_usd"] == (
        (Decimal(50) - money["poi_mwh"]) * Decimal("42.5")
    ).quantize(Decimal("0.01"))

    # The meter's data is recovered: those seconds restated with their real POI readings.
    real = [
        SitePowerRestatement(
            site_id="s",
            ts_s=ts,
            power=msgspec.structs.replace(site_second("s", ts), late_readings=1),
            late_readings=1,
            restated_at_s=DAY + 2050.0,
        )
        for ts in SILENT
    ]
    for offset, r in enumerate(real, start=40):  # one message (offset) per restated second
        write_batch(sink.con, restated_batch([r], offset))
    res = publish(sink.con, marts, gate=row_gate, now_s=DAY + 2100)  # generation 2

    final = _one(marts, energy_sql)
    assert final["poi_mwh"] == pytest.approx(900 * 160e6 / 3.6e9, rel=1e-12)
    assert (
        final["poi_estimated"],
        final["poi_estimated_s"],
        final["poi_complete"],
        final["reconciled"],
    ) == (False, 0, True, True)
    assert _one(marts, money_sql)["net_usd"] == expected_interval(900, Decimal("42.5"))["net_usd"]
    assert _status(marts) == {}  # no longer provisional
    with _views(marts) as v:
        revs = (
            v.sql("SELECT * FROM mart_revisions WHERE mart <> 'site_power' ORDER BY mart")
            .pl()
            .to_dicts()
        )
        restated = v.execute(
            "SELECT count(*) FROM mart_revisions WHERE mart = 'site_power'"
        ).fetchone()
    assert [
        (r["mart"], r["key_start_s"], r["generation_before"], r["generation_after"]) for r in revs
    ] == [("interval_energy", DAY, 1, 2), ("settlement", DAY, 1, 2)]
    assert restated == (30,) and res.revisions == 32
    changed = dict(
        zip(
            revs[0]["changed_columns"],
            zip(revs[0]["old_values"], revs[0]["new_values"], strict=True),
            strict=True,
        )
    )
    assert changed["poi_estimated"] == ("true", "false")
    assert changed["poi_estimated_s"] == ("30.0", "0.0")
    assert float(changed["poi_mwh"][0]) == pytest.approx(want_mwh, rel=1e-12)
    assert "poi_mwh" in revs[1]["changed_columns"]
