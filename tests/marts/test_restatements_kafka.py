"""Restatements through the real broker: applied once with their offsets (a crash before
the commit applies nothing, the restart applies each once), the latest of two restatements
of a second wins, one beyond the horizon and a malformed one are dead-lettered."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import duckdb
import msgspec
import pytest

from schemas.restatement import RESTATED_TOPIC
from streams.marts.sink import MartSink, run_sink
from streams.settings import Settings
from tests.marts.helpers import site_second, stream
from tests.marts.test_restatements import restatement
from tests.marts.test_sink_kafka import _consumed, _produce

pytestmark = pytest.mark.kafka
ENC = msgspec.json.Encoder()


class Crash(RuntimeError):
    pass


def test_restatements_apply_once_with_their_offsets(fresh_namespace_settings: Settings,
                                                     tmp_path: Path) -> None:
    s = fresh_namespace_settings.model_copy(update={"restatement_horizon_s": 3600.0})
    start = int(time.time()) - 300
    a, b = site_second("site-a", start + 5), site_second("site-a", start + 6)
    restated = [
        restatement(a, 1e6, 2),
        restatement(b, 1e6, 1),
        restatement(b, 3e6, 4),  # cumulative: the second restatement of b wins
        msgspec.structs.replace(restatement(a, 9e6, 9), restated_at_s=start + 5 + 3601.0),
    ]
    messages = [*stream(start, 20)]
    messages += [(RESTATED_TOPIC, b"site-a", ENC.encode(r)) for r in restated]
    messages.append((RESTATED_TOPIC, b"site-a", b'{"site_id": "site-a"}'))
    sent = _produce(s, messages)
    db = tmp_path / "sink.duckdb"

    def crash() -> None:
        raise Crash

    first = MartSink(s, db_path=db, group_id=f"g-{uuid.uuid4().hex[:8]}", poll_timeout_s=1.0)
    try:
        deadline = time.monotonic() + 60
        with pytest.raises(Crash):
            while time.monotonic() < deadline:
                first.step(before_commit=crash)
    finally:
        first.close()
    assert _consumed(db) == 0  # rolled back: rows, restatements and offsets alike

    stats = run_sink(s, threading.Event(), db_path=db, group_id=f"g-{uuid.uuid4().hex[:8]}",
                     once=True, idle_s=1.0, publisher=None)
    assert _consumed(db) == sent and stats.rejected == 2 and stats.restated == 2
    with duckdb.connect(str(db), read_only=True) as con:
        got = dict(con.execute(
            f"SELECT ts_s, mining_w FROM site_power WHERE ts_s IN ({a.ts_s}, {b.ts_s})"
        ).fetchall())
        audits = con.execute("SELECT ts_s, late_readings FROM power_restatements "
                             "ORDER BY ts_s").fetchall()
    assert got == {a.ts_s: a.mining_w + 1e6, b.ts_s: b.mining_w + 3e6}
    assert audits == [(a.ts_s, 2), (b.ts_s, 4)]
    # Run again: everything is stored with its offset, so nothing is applied twice.
    again = run_sink(s, threading.Event(), db_path=db, group_id=f"g-{uuid.uuid4().hex[:8]}",
                     once=True, idle_s=1.0, publisher=None)
    assert again.restated == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM power_restatements").fetchone() == (2,)
