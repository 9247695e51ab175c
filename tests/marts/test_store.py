"""The write path: bulk statements, rows and offsets in one transaction, harmless replays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from streams.marts.frames import accept_frames, build_frames
from streams.marts.store import (
    Batch,
    StoreError,
    load_marks,
    load_offsets,
    open_store,
    write_batch,
)
from streams.marts.tables import TABLES
from tests.marts.helpers import gpu_frame, site_second


class CountingConnection:
    """Forwards to a real connection and records every statement sent."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.statements: list[str] = []
        self.executemany_calls = 0

    def execute(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        return self.con.execute(sql, *args)

    def executemany(self, *args: Any) -> Any:
        self.executemany_calls += 1
        return self.con.executemany(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def _batch(seconds: int, nodes: int, start: int = 1_000_000,
           offset: int = 0) -> tuple[list[tuple[str, Any]], Batch]:
    items: list[tuple[str, Any]] = [("site.power.v1", site_second("s", start + i))
                                    for i in range(seconds)]
    items += [("telemetry.gpu.v1", gpu_frame("s", f"n{n}", i, start + i + 0.5))
              for i in range(seconds) for n in range(nodes)]
    acc = accept_frames(items, {})
    batch = Batch(frames=build_frames(acc.items), offsets={("t.site.power.v1", 0): offset},
                  marks=acc.marks, frames_seen=acc.frames, stale=acc.stale)
    return items, batch


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[Any]]:
    names = [t.name for t in TABLES] + ["sink_offsets", "sink_sources", "sink_dirty"]
    return {n: con.execute(f"SELECT *{_excl(n)} FROM {n} ORDER BY ALL").fetchall()
            for n in names}


def _excl(name: str) -> str:
    return " EXCLUDE (updated_at_s)" if name == "sink_offsets" else ""


@pytest.fixture
def con(tmp_path: Path) -> Any:
    c = open_store(tmp_path / "sink.duckdb")
    yield c
    c.close()


@pytest.mark.parametrize("seconds", [5, 400])
def test_one_statement_per_table_whatever_the_batch_size(con: Any, seconds: int) -> None:
    spy = CountingConnection(con)
    _, batch = _batch(seconds, nodes=5)
    write_batch(spy, batch)  # type: ignore[arg-type]
    inserts = [s for s in spy.statements if s.lstrip().upper().startswith("INSERT")]
    # site_power, telemetry_gpu_1m, sink_offsets, sink_sources, sink_dirty: one each.
    assert len(inserts) == 5
    assert spy.executemany_calls == 0
    assert con.execute("SELECT count(*) FROM site_power").fetchall()[0][0] == seconds
    assert con.execute("SELECT sum(readings) FROM telemetry_gpu_1m").fetchall()[0][0] == \
        seconds * 5 * 4


def test_crash_inside_the_transaction_writes_nothing(con: Any) -> None:
    _, first = _batch(30, nodes=2, offset=30)
    write_batch(con, first)
    before = _snapshot(con)

    def boom() -> None:
        raise RuntimeError("simulated crash between insert and commit")

    _, second = _batch(30, nodes=2, start=2_000_000, offset=60)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_batch(con, second, before_commit=boom)
    assert _snapshot(con) == before
    assert load_offsets(con) == {("t.site.power.v1", 0): 30}
    # The connection is usable afterwards and the same batch then goes in whole.
    write_batch(con, second)
    assert load_offsets(con) == {("t.site.power.v1", 0): 60}
    assert con.execute("SELECT count(*) FROM site_power").fetchall()[0][0] == 60


def test_crash_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sink.duckdb"
    c = open_store(path)
    _, batch = _batch(10, nodes=1, offset=10)

    def boom() -> None:
        raise KeyboardInterrupt  # not an Exception: must still roll back

    with pytest.raises(KeyboardInterrupt):
        write_batch(c, batch, before_commit=boom)
    c.close()
    c = open_store(path)
    assert load_offsets(c) == {}
    assert c.execute("SELECT count(*) FROM site_power").fetchall()[0][0] == 0
    c.close()


def test_replayed_batch_changes_nothing(con: Any) -> None:
    items, batch = _batch(50, nodes=3, offset=50)
    write_batch(con, batch)
    before = _snapshot(con)
    # The same messages again (e.g. offsets lost): watermarks drop the telemetry and the
    # seconds are upserted on their key.
    acc = accept_frames(items, load_marks(con))
    assert sum(acc.stale.values()) == 150 and not acc.frames
    replay = Batch(frames=build_frames(acc.items), offsets={("t.site.power.v1", 0): 50},
                   marks=acc.marks, frames_seen=acc.frames, stale=acc.stale)
    write_batch(con, replay)
    after = _snapshot(con)
    for name in [t.name for t in TABLES]:
        assert after[name] == before[name], name
    stale = con.execute("SELECT sum(stale_frames), sum(frames) FROM sink_sources").fetchone()
    assert stale == (150, 150)


def test_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "sink.duckdb"
    c = open_store(path)
    code = ("import sys; from pathlib import Path; from streams.marts.store import open_store,"
            " StoreError\ntry:\n open_store(Path(sys.argv[1]))\nexcept StoreError as e:\n"
            " print(e); sys.exit(3)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, cwd=Path(__file__).parents[2], timeout=60)
    c.close()
    assert out.returncode == 3, out.stderr
    assert "one writer process" in out.stdout
    assert issubclass(StoreError, RuntimeError)


def test_the_sink_store_caps_duckdb_memory(tmp_path: Path) -> None:
    c = open_store(tmp_path / "sink.duckdb", memory_mb=256)
    limit = c.execute("SELECT current_setting('memory_limit')").fetchone()
    c.close()
    assert limit == ("244.1 MiB",)  # 256 MB in DuckDB's binary units
