"""The sink against the real broker: exactly once across kill -9, and BI reading while the
sink writes. Each restart uses a new consumer group id: the offsets live in DuckDB, so the
group only decides who gets the partitions, and a killed member would otherwise hold them
until its session times out."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from streams.io.kafka import TopicProducer
from streams.marts.sink import run_sink
from streams.marts.store import load_offsets, open_store
from streams.marts.tables import TABLES
from streams.settings import Settings
from tests.marts.helpers import extras, power_of, stream

pytestmark = pytest.mark.kafka
REPO = Path(__file__).parents[2]


def _produce(settings: Settings, messages: list[tuple[str, bytes, bytes]]) -> int:
    producer = TopicProducer(settings)
    for topic, key, value in messages:
        producer.send(topic, value, key=key)
    producer.flush()
    return producer.sent


def _env(settings: Settings, home: Path) -> dict[str, str]:
    return os.environ | {"SPILLWAY_HOME": str(home),
                         "SPILLWAY_TOPIC_NAMESPACE": settings.topic_namespace,
                         "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers}


def _sink_cmd(db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from streams.cli import main; main()", "sink",
            "--db", str(db), "--group", f"mart-test-{uuid.uuid4().hex[:8]}", *extra]


def _consumed(db: Path) -> int:
    con = open_store(db)
    try:
        return sum(load_offsets(con).values())
    finally:
        con.close()


def _tables(db: Path) -> dict[str, list[Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {t.name: con.execute(f"SELECT * FROM {t.name} ORDER BY ALL").fetchall()
               for t in TABLES}
        out["sink_sources"] = con.execute("SELECT * FROM sink_sources ORDER BY ALL").fetchall()
        out["sink_offsets"] = con.execute("SELECT topic, partition, next_offset FROM "
                                          "sink_offsets ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def test_sink_once_stores_everything(fresh_namespace_settings: Settings, tmp_path: Path) -> None:
    s = fresh_namespace_settings
    start = int(time.time()) - 200
    bad = [("site.power.v1", b"site-a", b"{not json"),
           ("telemetry.gpu.v1", b"n", b'{"site_id": "site-a"}')]
    sent = _produce(s, [*stream(start, 40), *bad, *extras(start)])
    db = tmp_path / "sink.duckdb"
    stats = run_sink(s, threading.Event(), db_path=db, group_id=f"g-{uuid.uuid4().hex[:8]}",
                     once=True, idle_s=0.5, publisher=None)
    assert stats.messages == sent and stats.rejected == 2  # dead-lettered, not stored
    assert _consumed(db) == sent  # ... and their offsets are stored all the same
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM site_power").fetchone() == (40,)
        # 3 nodes x 4 GPUs x 40 frames; 2 racks x 3 miners x 40; 2 meters x 40
        for table, n in [("telemetry_gpu_1m", 480), ("telemetry_asic_1m", 240),
                         ("telemetry_meter_1m", 80)]:
            assert con.execute(f"SELECT sum(readings) FROM {table}").fetchone() == (n,), table
        for table in ("grid_prices", "grid_carbon", "alerts"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,), table
        price = con.execute("SELECT price_usd_per_mwh FROM grid_prices").fetchall()[0][0]
        assert price == Decimal("42.123457")


def _independent_gpu_sum(seconds: int, nodes: int = 3, gpus: int = 4) -> Decimal:
    q = Decimal("0.000001")
    return sum((Decimal(power_of(i, g)).quantize(q, rounding=ROUND_HALF_EVEN)
                for i in range(seconds) for _ in range(nodes) for g in range(gpus)),
               Decimal(0))


@pytest.mark.slow
def test_kill_9_mid_stream_loses_and_duplicates_nothing(fresh_namespace_settings: Settings,
                                                        tmp_path: Path) -> None:
    s = fresh_namespace_settings
    seconds = 500
    start = int(time.time()) - 900
    sent = _produce(s, [*stream(start, seconds), *extras(start)])

    clean = tmp_path / "clean.duckdb"
    run_sink(s, threading.Event(), db_path=clean, group_id=f"g-{uuid.uuid4().hex[:8]}",
             once=True, idle_s=1.0, publisher=None)
    assert _consumed(clean) == sent

    killed = tmp_path / "killed.duckdb"
    env = _env(s, tmp_path / "home")
    rng = random.Random()
    progress: list[int] = []
    for _ in range(10):
        proc = subprocess.Popen(_sink_cmd(killed, "--once", "--idle", "1", "--batch", "40",
                                          "--no-publish", "--progress-every", "0"),
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until this run has written a batch
            if " messages in " in line and not line.startswith("• 0 messages"):
                break
        time.sleep(rng.uniform(0.0, 0.4))  # then kill at a random moment
        if proc.poll() is not None:
            break  # finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
        done = _consumed(killed)
        if done < sent:
            progress.append(done)
        if len(progress) >= 4:
            break
    final = subprocess.run(_sink_cmd(killed, "--once", "--idle", "1", "--no-publish"),
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert final.returncode == 0, final.stderr
    print(f"kill -9 landed after {progress} of {sent} messages had been stored")
    assert len(progress) >= 3 and 0 < progress[0], f"kills not mid-stream: {progress}/{sent}"
    assert progress == sorted(progress)  # every restart resumed where the last one stopped

    want, got = _tables(clean), _tables(killed)
    for name in want:
        assert got[name] == want[name], f"{name} differs after kill -9 and restart"
    assert got["sink_offsets"] and sum(r[2] for r in got["sink_offsets"]) == sent
    with duckdb.connect(str(killed), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT ts_s), max(ts_s) - min(ts_s) "
                           "FROM site_power").fetchone() == (seconds, seconds, seconds - 1)
        assert con.execute("SELECT sum(readings), sum(power_sum_w) FROM "
                           "telemetry_gpu_1m").fetchone() == (seconds * 12,
                                                              _independent_gpu_sum(seconds))
        assert con.execute("SELECT sum(stale_frames) FROM sink_sources").fetchone() == (0,)


@pytest.mark.slow
def _published_seconds(views: Path) -> int:
    try:
        con = duckdb.connect(str(views), read_only=True)
    except duckdb.Error:
        return -1  # being replaced by the next publication
    try:
        row = con.execute("SELECT count(*) FROM site_power").fetchone()
        return int(row[0]) if row else 0
    except duckdb.Error:
        return -1
    finally:
        con.close()


def _wait_published(views: Path, seconds: int, timeout_s: float) -> None:
    """Until the sink has published all ``seconds`` (or the timeout: the test then fails on
    the final count, with the sink's output)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _published_seconds(views) < seconds:
        time.sleep(0.25)


def test_bi_reads_published_marts_while_the_sink_writes(fresh_namespace_settings: Settings,
                                                        tmp_path: Path) -> None:
    s = fresh_namespace_settings
    home = tmp_path / "home"
    marts = home / "marts"
    env = _env(s, home)
    sink = subprocess.Popen(_sink_cmd(marts / "sink.duckdb", "--publish-every", "0.5",
                                      "--batch", "50"),
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    start = int(time.time()) - 100
    producer = TopicProducer(s)
    reader: subprocess.Popen[str] | None = None
    seconds = 0
    try:
        deadline = time.monotonic() + 60
        for chunk in range(16):  # 16 chunks of 5 seconds, one chunk every 0.4 s
            for topic, key, value in stream(start + chunk * 5, 5):
                producer.send(topic, value, key=key)
            producer.flush()
            seconds += 5
            if reader is None:
                while not (marts / "views.duckdb").exists() and time.monotonic() < deadline:
                    time.sleep(0.1)
                reader = subprocess.Popen([sys.executable, "-m", "tests.marts.reader",
                                           str(marts), "6"], cwd=REPO, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True)
            time.sleep(0.4)
        assert reader is not None
        out, err = reader.communicate(timeout=60)
    finally:
        _wait_published(marts / "views.duckdb", seconds, 60.0)
        sink.send_signal(signal.SIGTERM)
        sink_out, sink_err = sink.communicate(timeout=60)
    assert sink.returncode == 0, sink_err
    polls = [json.loads(line) for line in out.splitlines()]
    errors = [p["error"] for p in polls if "error" in p]
    assert not errors, errors
    assert reader.returncode == 0, err
    counts = [p["duckdb"] for p in polls]
    assert len(polls) >= 10 and len(set(counts)) >= 3, counts  # saw the marts grow
    assert counts == sorted(counts)  # generations only move forward
    assert all(p["duckdb"] == p["distinct"] for p in polls)  # never a duplicated second
    assert all(p["gpu_readings"] % 4 == 0 for p in polls)  # whole 4-GPU frames only
    # SQLAlchemy ran right after DuckDB: same generation or a later one, never older.
    assert all(p["sqlalchemy"] >= p["duckdb"] for p in polls)
    final = duckdb.connect(str(marts / "views.duckdb"), read_only=True)
    assert final.execute("SELECT count(*) FROM site_power").fetchone() == (seconds,)
    final.close()


def test_sink_once_drains_everything_however_late_the_first_fetch(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    # idle_s=0: quiet alone would end the run right after the assignment, before any fetch
    # came back (a CI run on a busy machine lost a whole batch that way with idle_s=0.5).
    s = fresh_namespace_settings
    sent = _produce(s, [*stream(int(time.time()) - 200, 40), *extras(int(time.time()) - 200)])
    db = tmp_path / "sink.duckdb"
    stats = run_sink(s, threading.Event(), db_path=db, group_id=f"g-{uuid.uuid4().hex[:8]}",
                     once=True, idle_s=0.0, publisher=None)
    assert stats.messages == sent and _consumed(db) == sent
