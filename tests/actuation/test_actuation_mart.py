"""The compliance mart: outcomes stored once, compliance per device and per command."""

from __future__ import annotations

import duckdb
import pytest

from schemas.actuation import ActuationOutcome
from streams.marts.actuation_mart import ensure_tables, outcomes_writer, write_outcomes


def out(device: str, kind: str, at: float, **kw: object) -> ActuationOutcome:
    return ActuationOutcome(
        outcome_id=f"c1/{device}/{kind}/{kw.get('attempt', 1)}",
        command_id="c1",
        site_id="s",
        device_id=device,
        kind=kind,  # type: ignore[arg-type]
        action=kw.pop("action", "sleep"),  # type: ignore[arg-type]
        target_w=150.0,
        issued_at_s=100.0,
        deadline_s=110.0,
        at_s=at,
        response_s=at - 100.0 if kind == "complied" else None,
        **kw,  # type: ignore[arg-type]
    )


def test_compliance_per_device_and_command_and_redelivery_is_ignored() -> None:
    con = duckdb.connect()
    ensure_tables(con)
    batch = [
        out("a", "sent", 100.2),
        out("a", "acknowledged", 100.4),
        out("a", "complied", 102.0, measured_w=20.0),
        out("b", "sent", 100.2),
        out("b", "acknowledged", 100.5),
        out("b", "failed", 110.1),
        out("b", "escalated", 110.1),
        out("b", "complied", 111.0, action="outlet_off", via="outlet", measured_w=0.0),
    ]
    assert write_outcomes(con, batch) == 8
    assert write_outcomes(con, batch) == 0  # the same messages again: nothing more
    rows = con.execute(
        "SELECT device_id, response_s, failed, escalated, deadline_met, via "
        "FROM actuation_compliance ORDER BY device_id"
    ).fetchall()
    assert rows == [
        ("a", 2.0, False, False, True, "firmware"),
        ("b", 11.0, True, True, False, "outlet"),
    ]
    [summary] = con.execute(
        "SELECT devices, complied, failed, escalated, deadline_met, response_max_s "
        "FROM actuation_command_summary"
    ).fetchall()
    assert summary == (2, 2, 1, 1, 1, pytest.approx(11.0))


def test_sink_hook_writes_inside_the_callers_transaction() -> None:
    con = duckdb.connect()
    ensure_tables(con)
    hook = outcomes_writer(con, [("actuation.outcomes.v1", out("a", "sent", 100.2))])
    assert hook is not None
    con.begin()
    hook()
    con.rollback()  # the sink's transaction failed: the outcome is not stored either
    assert con.execute("SELECT count(*) FROM actuation_outcomes").fetchall() == [(0,)]
    assert outcomes_writer(con, [("site.power.v1", object())]) is None
