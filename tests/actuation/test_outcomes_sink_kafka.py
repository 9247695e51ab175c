"""Outcomes through the real sink into the compliance mart: stored once, even when the same
outcome is delivered twice, in the transaction that stores the sink's offsets."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from schemas.actuation import ActuationOutcome
from streams.io.kafka import TopicProducer
from streams.marts.actuation_mart import OUTCOMES_TOPIC
from streams.marts.sink import MartSink
from streams.settings import Settings

pytestmark = pytest.mark.kafka


def outcome(device: str, kind: str, at: float) -> ActuationOutcome:
    return ActuationOutcome(
        outcome_id=f"c1/{device}/{kind}/1",
        command_id="c1",
        site_id="s",
        device_id=device,
        kind=kind,  # type: ignore[arg-type]
        action="sleep",
        target_w=150.0,
        measured_w=10.0 if kind == "complied" else None,
        issued_at_s=at - 3,
        deadline_s=at + 30,
        at_s=at,
        response_s=3.0 if kind == "complied" else None,
    )


def test_outcomes_land_in_the_compliance_mart_once(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_namespace_settings
    now = time.time()
    msgs = [outcome(d, k, now) for d in ("m1", "m2") for k in ("sent", "acknowledged", "complied")]
    p = TopicProducer(settings)
    for o in msgs + msgs[:3]:  # the first device's outcomes delivered twice
        p.send(OUTCOMES_TOPIC, msgspec.json.encode(o), o.device_id.encode())
    p.flush()
    sink = MartSink(
        settings, db_path=tmp_path / "mart.duckdb", group_id="t-act-sink", topics=(OUTCOMES_TOPIC,)
    )
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while seen < 9 and time.monotonic() < deadline:
            seen += sink.step()
        assert seen == 9
        rows = sink.con.execute(
            "SELECT device_id, response_s, deadline_met FROM actuation_compliance ORDER BY 1"
        ).fetchall()
        stored = sink.con.execute("SELECT count(*) FROM actuation_outcomes").fetchall()
    finally:
        sink.close()
    assert rows == [("m1", 3.0, True), ("m2", 3.0, True)]
    assert stored == [(6,)]
