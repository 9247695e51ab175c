"""Through the real broker: site configs are stored with their Kafka positions, late site
power restates a published interval with one audit record per mart, and a replay adds
nothing."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from streams.io.kafka import TopicProducer
from streams.marts.publish import VIEWS_FILE, publish
from streams.marts.sink import run_sink
from streams.settings import Settings
from tests.marts.helpers import ENC, rt_price, site_config, site_second
from tests.marts.test_publish import FakeGate

pytestmark = pytest.mark.kafka


def _produce(settings: Settings, messages: list[tuple[str, bytes, Any]]) -> None:
    producer = TopicProducer(settings)
    for topic, key, value in messages:
        producer.send(topic, ENC.encode(value), key=key)
    producer.flush()


def _run(settings: Settings, marts: Path) -> None:
    run_sink(settings, threading.Event(), db_path=marts / "sink.duckdb",
             group_id=f"g-{uuid.uuid4().hex[:8]}", once=True, idle_s=0.5,
             publish_every_s=None,
             publisher=lambda con: publish(con, marts, gate=FakeGate()))


def _query(marts: Path, sql: str) -> list[Any]:
    with duckdb.connect(str(marts / VIEWS_FILE), read_only=True) as v:
        return v.execute(sql).fetchall()


def test_late_site_power_through_the_sink(fresh_namespace_settings: Settings,
                                          tmp_path: Path) -> None:
    s = fresh_namespace_settings
    marts = tmp_path / "marts"
    start = int(time.time()) // 900 * 900 - 3600  # two whole intervals, an hour ago
    hole = range(start + 100, start + 200)
    configs = [site_config("s", updated_s=start - 10.0),
               site_config("s", updated_s=start - 5.0, hashprice=55.0)]
    _produce(s, [*(("site.config.v1", b"s", c) for c in configs),
                 *(("site.power.v1", b"s", site_second("s", ts))
                   for ts in range(start, start + 1801) if ts not in hole),
                 *(("grid.prices.v1", b"LZ_WEST", rt_price(start + k * 900, 42.5))
                   for k in range(2))])
    _run(s, marts)
    energy_sql = f"SELECT total_mwh FROM interval_energy WHERE interval_start_s = {start}"
    assert _query(marts, energy_sql)[0][0] == pytest.approx(160 * 800 / 3600, rel=1e-12)
    assert _query(marts, "SELECT updated_s, kafka_offset, hashprice_usd_per_ph_day FROM "
                         "site_configs ORDER BY ALL") == [(start - 10.0, 0, Decimal(50)),
                                                          (start - 5.0, 1, Decimal(55))]
    assert _query(marts, "SELECT count(*), min(hashprice_usd_per_ph_day) FROM settlement"
                  ) == [(2, Decimal(55))]

    _produce(s, [("site.power.v1", b"s", site_second("s", ts)) for ts in hole])
    _run(s, marts)
    assert _query(marts, energy_sql)[0][0] == pytest.approx(160 * 900 / 3600, rel=1e-12)
    revs = _query(marts, "SELECT mart, key_start_s, generation_before < generation_after, "
                         "list_contains(changed_columns, 'total_mwh') FROM mart_revisions "
                         "ORDER BY mart")
    assert revs == [("interval_energy", start, True, True), ("settlement", start, True, False)]

    # Replay everything: the sink's stored offsets are rewound to the start.
    con = duckdb.connect(str(marts / "sink.duckdb"))
    con.execute("UPDATE sink_offsets SET next_offset = 0")
    con.close()
    _run(s, marts)
    assert _query(marts, "SELECT count(*) FROM mart_revisions") == [(2,)]
    assert _query(marts, "SELECT count(*) FROM site_configs") == [(2,)]
    assert _query(marts, energy_sql)[0][0] == pytest.approx(160 * 900 / 3600, rel=1e-12)
