"""The curtailment controller's decision audit is columns of the ``curtailment_events`` mart:
"why were we curtailed at 14:05?" is one SQL query, no JSON digging; a store made before the
columns existed gains them when it is opened (no broker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from schemas.events import CurtailmentEvent
from streams.marts.publish import build_views, publish
from streams.marts.store import add_missing_columns, open_store
from streams.marts.tables import BY_NAME
from tests.marts.test_publish import FakeGate
from tests.marts.test_settlement_mart import Sink, _views
from tests.marts.test_settlement_mart import sink as sink  # noqa: F401 - the fixture

T0 = 1_751_396_400  # 2025-07-01 14:00 CDT (19:00 UTC)

# The query of docs/settlement.md ("Decision audit"): the latest event message of the site
# at or before T.
WHY = """
SELECT event_id, kind, reasons, reason_details, price_kind, price_usd_per_mwh,
       price_published_s, confirm_prices_usd_per_mwh, hashprice_net_usd_per_ph_day,
       hashprice_source, breakeven_models, breakeven_usd_per_mwh, reserved_mw,
       trigger_states
FROM curtailment_events
WHERE site_id = 'ref400' AND ts_s <= epoch(TIMESTAMPTZ '2025-07-01 14:05:00-05')
ORDER BY ts_s DESC LIMIT 1
"""


def event(kind: str, ts: float, **audit: Any) -> CurtailmentEvent:
    return CurtailmentEvent(
        event_id="ref400/economic/1",
        site_id="ref400",
        kind=kind,  # type: ignore[arg-type]
        reasons=["economic"],
        reason_details=["SCED LMP 512.30 > breakeven 61.20 (S19j)"],
        issued_at_s=T0 + 62.0,
        target_mining_w=20e6,
        baseline_mining_w=120e6,
        deadline_s=T0 + 362.0,
        ts_s=ts,
        **audit,
    )


AUDIT: dict[str, Any] = {
    "price_kind": "sced",
    "price_usd_per_mwh": 512.3,
    "price_interval_start_s": float(T0),
    "price_published_s": T0 + 60.0,
    "confirm_prices_usd_per_mwh": [498.0, 512.3],
    "confirm_published_s": [T0 - 240.0, T0 + 60.0],
    "hashprice_usd_per_ph_day": 52.0,
    "hashprice_net_usd_per_ph_day": 50.96,
    "hashprice_published_s": float(T0 - 3600),
    "hashprice_source": "coinmetrics",
    "breakeven_models": ["S19j", "S21"],
    "breakeven_usd_per_mwh": [61.2, 120.5],
    "reserved_mw": 10.0,
    "reserved_awards": ["ecrs/rt/1751396400/10.0"],
    "trigger_states": ["economic:on", "grid:off", "4cp:off", "site_limit:off", "price_feed:fresh"],
    "site_load_w": 355e6,
    "site_limit_w": 400e6,
}


def _events() -> list[tuple[str, Any]]:
    later = {
        **AUDIT,
        "price_usd_per_mwh": 35.0,
        "price_published_s": T0 + 960.0,
        "trigger_states": ["economic:off"],
    }
    return [
        ("curtailment.events.v1", event("issued", T0 + 62.0, **AUDIT)),
        (
            "curtailment.events.v1",
            event(
                "achieved",
                T0 + 95.0,
                **AUDIT,
                achieved_at_s=T0 + 95.0,
                response_time_s=33.0,
                deadline_met=True,
            ),
        ),
        # After 14:05: must not answer a question about 14:05.
        ("curtailment.events.v1", event("released", T0 + 961.0, **later)),
    ]


def test_every_audit_field_is_a_column() -> None:
    cols = {c.name: c.sql for c in BY_NAME["curtailment_events"].columns}
    assert {k: cols.get(k) for k in AUDIT} == {
        **dict.fromkeys(AUDIT, "DOUBLE"),
        "price_kind": "VARCHAR",
        "hashprice_source": "VARCHAR",
        "confirm_prices_usd_per_mwh": "DOUBLE[]",
        "confirm_published_s": "DOUBLE[]",
        "breakeven_models": "VARCHAR[]",
        "breakeven_usd_per_mwh": "DOUBLE[]",
        "reserved_awards": "VARCHAR[]",
        "trigger_states": "VARCHAR[]",
    }


def _answer(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    frame: pl.DataFrame = con.sql(WHY).pl()
    assert frame.height == 1
    return frame.row(0, named=True)


def test_why_were_we_curtailed_is_one_query(sink: Sink, tmp_path: Path) -> None:
    sink.write(_events())
    want = {
        "event_id": "ref400/economic/1",
        "kind": "achieved",
        "reasons": ["economic"],
        "reason_details": ["SCED LMP 512.30 > breakeven 61.20 (S19j)"],
        "price_kind": "sced",
        "price_usd_per_mwh": 512.3,
        "price_published_s": T0 + 60.0,
        "confirm_prices_usd_per_mwh": [498.0, 512.3],
        "hashprice_net_usd_per_ph_day": 50.96,
        "hashprice_source": "coinmetrics",
        "breakeven_models": ["S19j", "S21"],
        "breakeven_usd_per_mwh": [61.2, 120.5],
        "reserved_mw": 10.0,
        "trigger_states": AUDIT["trigger_states"],
    }
    assert _answer(sink.con) == want
    # The same question over what BI reads: the published view.
    marts = tmp_path / "marts"
    publish(sink.con, marts, gate=FakeGate(), now_s=T0 + 1000)
    with _views(marts) as v:
        assert _answer(v) == want
        # The price was known when the decision was made (published before the message).
        assert v.execute(
            "SELECT bool_and(price_published_s <= ts_s) FROM curtailment_events"
        ).fetchone() == (True,)


OLD_DDL = (
    "CREATE TABLE curtailment_events (event_id VARCHAR, site_id VARCHAR, kind VARCHAR, "
    "reasons VARCHAR[], reason_details VARCHAR[], issued_at_s DOUBLE, target_mining_w DOUBLE, "
    "baseline_mining_w DOUBLE, deadline_s DOUBLE, achieved_at_s DOUBLE, "
    "response_time_s DOUBLE, deadline_met BOOLEAN, curtailed_wh DOUBLE, ended_at_s DOUBLE, "
    "ts_s DOUBLE, PRIMARY KEY (event_id, kind, ts_s))"
)


def test_a_store_from_before_the_audit_columns_gains_them(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as old:
        old.execute(OLD_DDL)
        old.execute(
            "INSERT INTO curtailment_events (event_id, site_id, kind, ts_s) "
            "VALUES ('e0', 'ref400', 'issued', 1.0)"
        )
    con = open_store(path)
    try:
        cols = [r[0] for r in con.execute("DESCRIBE curtailment_events").fetchall()]
        assert cols == BY_NAME["curtailment_events"].names  # appended in the contract's order
        assert add_missing_columns(con) == []  # a second open adds nothing
        # The old row reads null in the new columns; new rows carry the audit.
        assert con.execute(
            "SELECT price_usd_per_mwh, trigger_states FROM curtailment_events"
        ).fetchall() == [(None, None)]
        s = Sink(con)
        s.write(_events())
        assert _answer(con)["trigger_states"] == AUDIT["trigger_states"]
    finally:
        con.close()


def test_the_view_shows_the_audit_over_partitions_published_before_it(tmp_path: Path) -> None:
    """A partition published before the columns existed lacks them: the view still has them
    (null there), whichever file comes first."""
    marts = tmp_path / "marts"
    old, new = (marts / "parquet" / "curtailment_events" / f"part-{k}.parquet" for k in "ab")
    old.parent.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(OLD_DDL)
        con.execute(
            "INSERT INTO curtailment_events (event_id, site_id, kind, ts_s) "
            "VALUES ('e0', 'ref400', 'issued', 1.0)"
        )
        con.execute(f"COPY curtailment_events TO '{old}' (FORMAT parquet)")
    store = open_store(tmp_path / "sink.duckdb")
    try:
        Sink(store).write(_events())
        store.execute(f"COPY curtailment_events TO '{new}' (FORMAT parquet)")
    finally:
        store.close()
    rel = {
        "2025-07-01/00": str(old.relative_to(marts)),
        "2025-07-01/19": str(new.relative_to(marts)),
    }
    build_views(marts, {"curtailment_events": rel}, 1, 0.0)
    with _views(marts) as v:
        assert _answer(v)["trigger_states"] == AUDIT["trigger_states"]
        assert v.execute(
            "SELECT trigger_states FROM curtailment_events WHERE event_id = 'e0'"
        ).fetchall() == [(None,)]
