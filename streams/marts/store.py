"""The sink's DuckDB file: tables, and one transaction per batch holding rows AND offsets.

Only the sink process opens this file (DuckDB allows one writer process; BI reads the
published Parquet and views instead). Rows go in as whole frames
(``INSERT INTO t SELECT * FROM frame``), never row by row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from streams.errors import TransientError
from streams.marts.frames import Mark, hours_touched
from streams.marts.revisions import SITE_POWER, diff_rows
from streams.marts.tables import BOOKKEEPING_DDL, BY_NAME, REVISIONS, TABLES, Table


class StoreError(TransientError, RuntimeError):
    """The sink's DuckDB file could not be opened or written (see the message for which)."""


def open_store(path: Path, memory_mb: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the sink database read-write, with every table;
    ``memory_mb`` caps DuckDB's memory (None: DuckDB's default, 80% of RAM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        raise StoreError(
            f"cannot open the sink database {path} for writing (is another sink "
            f"running? DuckDB allows one writer process): {exc}"
        ) from exc
    if memory_mb is not None:
        con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
    for ddl in (*BOOKKEEPING_DDL, *STATUS_DDL, *(t.ddl() for t in (*TABLES, REVISIONS))):
        con.execute(ddl)
    add_missing_columns(con)
    return con


def add_missing_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Add the declared columns an existing store lacks (``CREATE TABLE IF NOT EXISTS``
    alters nothing); their old rows read null. Returns ``table.column`` of each added.

    Rows are written by column name, so an added column's place at the end is harmless."""
    have = {
        (str(t), str(c))
        for t, c in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
    }
    added = []
    for table in (*TABLES, REVISIONS):
        for c in table.columns:
            if (table.name, c.name) not in have:
                con.execute(f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {c.name} {c.sql}")
                added.append(f"{table.name}.{c.name}")
    return added


STATUS_DDL: tuple[str, ...] = (
    # Rows of published derived partitions that failed a row-level gate expectation
    # (provisional, with why); replaced per (mart, day) at each publication of that day.
    "CREATE TABLE IF NOT EXISTS mart_provisional (mart VARCHAR, site_id VARCHAR, "
    "key_start_s BIGINT, day VARCHAR NOT NULL, reason VARCHAR NOT NULL, "
    "generation BIGINT NOT NULL, PRIMARY KEY (mart, site_id, key_start_s))",
    # Partitions a gate holds back: one row (and one data_quality alert) per held partition
    # from the publication that first held it until one publishes it.
    "CREATE TABLE IF NOT EXISTS mart_holds (unit VARCHAR PRIMARY KEY, mart VARCHAR NOT NULL, "
    "day VARCHAR NOT NULL, site_id VARCHAR NOT NULL, alert_id VARCHAR NOT NULL, "
    "started_at_s DOUBLE NOT NULL, reason VARCHAR NOT NULL, report VARCHAR NOT NULL)",
    # Restatements of stored seconds (late readings), applied in the batch that read them;
    # ``generation`` is set by the publication that first published the restated second.
    "CREATE TABLE IF NOT EXISTS power_restatements (topic VARCHAR, partition INTEGER, "
    "kafka_offset BIGINT, site_id VARCHAR NOT NULL, ts_s BIGINT NOT NULL, "
    "changed_columns VARCHAR[], old_values VARCHAR[], new_values VARCHAR[], "
    "late_readings BIGINT NOT NULL, received_at_s DOUBLE NOT NULL, generation BIGINT, "
    "PRIMARY KEY (topic, partition, kafka_offset))",
)
"""Sink-side status tables (not published as they are; ``publish`` reads them)."""


def load_offsets(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], int]:
    """Next offset to read, by (full topic name, partition)."""
    rows = con.execute("SELECT topic, partition, next_offset FROM sink_offsets").fetchall()
    return {(t, int(p)): int(o) for t, p, o in rows}


def load_marks(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], Mark]:
    rows = con.execute("SELECT topic, source_id, last_ts_s, last_seq FROM sink_sources").fetchall()
    return {(t, s): (float(ts), int(seq)) for t, s, ts, seq in rows}


def _merge_sql(table: Table, view: str) -> str:
    cols = ", ".join(table.names)
    head = f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {view}"
    if table.merge == "replace":
        return head.replace("INSERT INTO", "INSERT OR REPLACE INTO", 1)
    keys = ", ".join(table.key)
    sets = [
        "readings = readings + excluded.readings",
        "power_readings = power_readings + excluded.power_readings",
        "power_sum_w = power_sum_w + excluded.power_sum_w",
        "power_min_w = least(power_min_w, excluded.power_min_w)",
        "power_max_w = greatest(power_max_w, excluded.power_max_w)",
        "first_ts_s = least(first_ts_s, excluded.first_ts_s)",
        "last_ts_s = greatest(last_ts_s, excluded.last_ts_s)",
    ]
    energy = [
        c.name
        for c in table.columns
        if c.name.startswith("energy_first_") and not c.name.endswith("_ts_s")
    ]
    if energy:
        first, last = energy[0], energy[0].replace("first", "last")
        # Same tie rule as frames.rollup: smallest / largest (ts, value) wins.
        take_first = (
            f"(excluded.energy_first_ts_s IS NOT NULL AND (energy_first_ts_s IS NULL "
            f"OR (excluded.energy_first_ts_s, excluded.{first}) < "
            f"(energy_first_ts_s, {first})))"
        )
        take_last = (
            f"(excluded.energy_last_ts_s IS NOT NULL AND (energy_last_ts_s IS NULL "
            f"OR (excluded.energy_last_ts_s, excluded.{last}) > "
            f"(energy_last_ts_s, {last})))"
        )
        sets += [
            f"{first} = CASE WHEN {take_first} THEN excluded.{first} ELSE {first} END",
            f"energy_first_ts_s = CASE WHEN {take_first} THEN excluded.energy_first_ts_s "
            "ELSE energy_first_ts_s END",
            f"{last} = CASE WHEN {take_last} THEN excluded.{last} ELSE {last} END",
            f"energy_last_ts_s = CASE WHEN {take_last} THEN excluded.energy_last_ts_s "
            "ELSE energy_last_ts_s END",
        ]
    if "hashrate_sum_ths" in table.names:
        sets += [
            "hashrate_sum_ths = hashrate_sum_ths + excluded.hashrate_sum_ths",
            "hashing_readings = hashing_readings + excluded.hashing_readings",
        ]
    return f"{head} ON CONFLICT ({keys}) DO UPDATE SET {', '.join(sets)}"


MERGE_SQL: dict[str, str] = {t.name: _merge_sql(t, f"_batch_{t.name}") for t in TABLES}
# A second already restated by late readings keeps its restatement when the original (or a
# redelivery of it) arrives later: restatements are cumulative and only ever add readings.
MERGE_SQL["site_power"] += (
    " WHERE NOT EXISTS (SELECT 1 FROM site_power s WHERE s.site_id = _batch_site_power.site_id"
    " AND s.ts_s = _batch_site_power.ts_s AND list_contains(s.flags, 'restated'))"
)

RESTATED_POSITION = ("_topic", "_partition", "_offset", "_late_readings")
"""Columns of ``Batch.restated`` besides ``site_power``'s: where each restatement was read
(full topic, partition, offset) and its late readings."""


@dataclass
class Batch:
    """Everything one transaction writes."""

    frames: dict[str, pl.DataFrame]
    offsets: dict[tuple[str, int], int]
    """Next offset by (full topic, partition): last consumed offset + 1."""
    marks: dict[tuple[str, str], Mark] = field(default_factory=dict)
    frames_seen: Mapping[tuple[str, str], int] = field(default_factory=dict)
    stale: Mapping[tuple[str, str], int] = field(default_factory=dict)
    restated: pl.DataFrame | None = None
    """Restated seconds: ``site_power`` rows plus ``RESTATED_POSITION`` (one per second)."""

    @property
    def rows(self) -> int:
        return sum(f.height for f in self.frames.values())


def write_batch(
    con: duckdb.DuckDBPyConnection, batch: Batch, before_commit: Callable[[], None] | None = None
) -> None:
    """Write the rows, the offsets, the source watermarks and the publication marks in ONE
    transaction: after a crash either all of it is there or none of it.

    ``before_commit`` runs inside the transaction (fault injection in tests).
    """
    con.begin()
    try:
        for name, frame in batch.frames.items():
            if frame.height == 0:
                continue
            view = f"_batch_{name}"
            con.register(view, frame)
            try:
                con.execute(MERGE_SQL[name])
            finally:
                con.unregister(view)
        if batch.restated is not None and batch.restated.height:
            apply_restatements(con, batch.restated)
        _write_bookkeeping(con, batch)
        if before_commit is not None:
            before_commit()
        con.commit()
    except BaseException:
        con.rollback()
        raise


_NO_CHANGE = pl.lit([], dtype=pl.List(pl.String))


def apply_restatements(
    con: duckdb.DuckDBPyConnection, restated: pl.DataFrame, now_s: float | None = None
) -> int:
    """Replace the stored seconds with their restatements and record each one's before and
    after in ``power_restatements`` (inside the caller's transaction). Returns the
    seconds restated."""
    now = time.time() if now_s is None else now_s
    cols = ", ".join(SITE_POWER.names)
    after = restated.select(SITE_POWER.names)
    con.register("_restated", after)
    try:
        before = con.sql(
            f"SELECT {', '.join('p.' + c for c in SITE_POWER.names)} FROM site_power p "
            "JOIN _restated r ON p.site_id = r.site_id AND p.ts_s = r.ts_s"
        ).pl()
        con.execute(f"INSERT OR REPLACE INTO site_power ({cols}) SELECT {cols} FROM _restated")
    finally:
        con.unregister("_restated")
    changes = diff_rows("site_power", before, after)
    stored = before.select("site_id", "ts_s", pl.lit(True).alias("_stored"))
    audit = (
        restated.select("site_id", "ts_s", *RESTATED_POSITION)
        .join(stored, on=["site_id", "ts_s"], how="left")
        .join(changes, on=["site_id", "ts_s"], how="left")
        .select(
            pl.col("_topic").alias("topic"),
            pl.col("_partition").cast(pl.Int32).alias("partition"),
            pl.col("_offset").cast(pl.Int64).alias("kafka_offset"),
            "site_id",
            pl.col("ts_s").cast(pl.Int64),
            # Not stored before (the restatement came first): no before values to show.
            pl.when(pl.col("_stored")).then(pl.col("changed_columns").fill_null(_NO_CHANGE)),
            "old_values",
            "new_values",
            pl.col("_late_readings").cast(pl.Int64).alias("late_readings"),
            pl.lit(now, dtype=pl.Float64).alias("received_at_s"),
            pl.lit(None, dtype=pl.Int64).alias("generation"),
        )
    )
    con.register("_restatement_audit", audit)
    try:
        con.execute("INSERT OR IGNORE INTO power_restatements SELECT * FROM _restatement_audit")
    finally:
        con.unregister("_restatement_audit")
    hours = pl.DataFrame(
        {"table_name": "site_power", "hour_s": hours_touched(SITE_POWER, after)},
        schema={"table_name": pl.String, "hour_s": pl.Int64},
    )
    con.register("_restated_dirty", hours)
    try:
        con.execute(
            "INSERT OR IGNORE INTO sink_dirty SELECT table_name, hour_s FROM _restated_dirty"
        )
    finally:
        con.unregister("_restated_dirty")
    return after.height


def _write_bookkeeping(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    now = time.time()
    if batch.offsets:
        offsets = pl.DataFrame(
            [(t, p, o, now) for (t, p), o in batch.offsets.items()],
            schema={
                "topic": pl.String,
                "partition": pl.Int32,
                "next_offset": pl.Int64,
                "updated_at_s": pl.Float64,
            },
            orient="row",
        )
        _upsert(
            con,
            "sink_offsets",
            offsets,
            "next_offset = excluded.next_offset, updated_at_s = excluded.updated_at_s",
            "topic, partition",
        )
    keys = sorted(set(batch.marks) | set(batch.stale))
    if keys:
        sources = pl.DataFrame(
            {
                "topic": [k[0] for k in keys],
                "source_id": [k[1] for k in keys],
                "last_ts_s": [batch.marks.get(k, (float("-inf"), 0))[0] for k in keys],
                "last_seq": [batch.marks.get(k, (0.0, -(2**62)))[1] for k in keys],
                "frames": [batch.frames_seen.get(k, 0) for k in keys],
                "stale_frames": [batch.stale.get(k, 0) for k in keys],
            },
            schema={
                "topic": pl.String,
                "source_id": pl.String,
                "last_ts_s": pl.Float64,
                "last_seq": pl.Int64,
                "frames": pl.Int64,
                "stale_frames": pl.Int64,
            },
        )
        _upsert(
            con,
            "sink_sources",
            sources,
            "last_ts_s = CASE WHEN (excluded.last_ts_s, excluded.last_seq) > "
            "(last_ts_s, last_seq) THEN excluded.last_ts_s ELSE last_ts_s END, "
            "last_seq = CASE WHEN (excluded.last_ts_s, excluded.last_seq) > "
            "(last_ts_s, last_seq) THEN excluded.last_seq ELSE last_seq END, "
            "frames = frames + excluded.frames, "
            "stale_frames = stale_frames + excluded.stale_frames",
            "topic, source_id",
        )
    dirty = [
        (name, h)
        for name, f in batch.frames.items()
        if f.height
        for h in hours_touched(BY_NAME[name], f)
    ]
    if dirty:
        marks = pl.DataFrame(
            dirty, schema={"table_name": pl.String, "hour_s": pl.Int64}, orient="row"
        )
        con.register("_batch_dirty", marks)
        try:
            con.execute(
                "INSERT OR IGNORE INTO sink_dirty SELECT table_name, hour_s FROM _batch_dirty"
            )
        finally:
            con.unregister("_batch_dirty")


def _upsert(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, sets: str, keys: str
) -> None:
    view = f"_batch_{table}"
    con.register(view, frame)
    try:
        cols = ", ".join(frame.columns)
        con.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {view} "
            f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        )
    finally:
        con.unregister(view)
