"""Compliance per device and per command, from ``actuation.outcomes.v1``, in the sink.

``actuation_outcomes`` keeps every outcome once (key ``outcome_id``: a redelivered message
changes nothing); the views answer the questions settlement and operators ask:
``actuation_compliance`` (one row per command and device: when sent, acknowledged,
complied, the response time, whether the deadline was met, whether it escalated) and
``actuation_command_summary`` (one row per command). The sink writes the rows inside the
transaction that stores its offsets (``outcomes_writer``), so a crash neither loses nor
doubles an outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import duckdb
import polars as pl

from schemas.actuation import ActuationOutcome

OUTCOMES_TOPIC = "actuation.outcomes.v1"

COLUMNS: dict[str, Any] = {
    "outcome_id": pl.String,
    "command_id": pl.String,
    "site_id": pl.String,
    "device_id": pl.String,
    "kind": pl.String,
    "action": pl.String,
    "via": pl.String,
    "tier": pl.Int32,
    "attempt": pl.Int32,
    "power_limit_w": pl.Float64,
    "target_w": pl.Float64,
    "measured_w": pl.Float64,
    "issued_at_s": pl.Float64,
    "deadline_s": pl.Float64,
    "at_s": pl.Float64,
    "response_s": pl.Float64,
    "detail": pl.String,
}

DDL = """
CREATE TABLE IF NOT EXISTS actuation_outcomes (
    outcome_id VARCHAR PRIMARY KEY, command_id VARCHAR NOT NULL, site_id VARCHAR NOT NULL,
    device_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, action VARCHAR NOT NULL,
    via VARCHAR NOT NULL, tier INTEGER, attempt INTEGER, power_limit_w DOUBLE,
    target_w DOUBLE, measured_w DOUBLE, issued_at_s DOUBLE NOT NULL, deadline_s DOUBLE NOT NULL,
    at_s DOUBLE NOT NULL, response_s DOUBLE, detail VARCHAR
);
CREATE OR REPLACE VIEW actuation_compliance AS
SELECT command_id, device_id,
       any_value(site_id) AS site_id,
       arg_min(action, at_s) AS action,
       arg_max(via, at_s) AS via,
       max(tier) AS tier,
       min(issued_at_s) AS issued_at_s,
       max(deadline_s) AS deadline_s,
       min(at_s) FILTER (WHERE kind = 'sent') AS sent_at_s,
       min(at_s) FILTER (WHERE kind = 'acknowledged') AS acknowledged_at_s,
       min(at_s) FILTER (WHERE kind = 'complied') AS complied_at_s,
       min(response_s) FILTER (WHERE kind = 'complied') AS response_s,
       min(measured_w) FILTER (WHERE kind = 'complied') AS complied_w,
       max(attempt) AS attempts,
       bool_or(kind = 'failed') AS failed,
       bool_or(kind = 'escalated') AS escalated,
       bool_or(kind = 'dry_run') AS dry_run,
       coalesce(min(at_s) FILTER (WHERE kind = 'complied') <= max(deadline_s), false)
           AS deadline_met
FROM actuation_outcomes GROUP BY command_id, device_id;
CREATE OR REPLACE VIEW actuation_command_summary AS
SELECT command_id, any_value(site_id) AS site_id, min(issued_at_s) AS issued_at_s,
       count(*) AS devices,
       count(complied_at_s) AS complied,
       count(*) FILTER (WHERE failed) AS failed,
       count(*) FILTER (WHERE escalated) AS escalated,
       count(*) FILTER (WHERE deadline_met) AS deadline_met,
       quantile_cont(response_s, 0.5) AS response_p50_s,
       quantile_cont(response_s, 0.95) AS response_p95_s,
       max(response_s) AS response_max_s
FROM actuation_compliance GROUP BY command_id;
"""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL.split(";"):
        if statement.strip():
            con.execute(statement).fetchall()


def outcome_frame(outcomes: Iterable[ActuationOutcome]) -> pl.DataFrame:
    rows = [{c: getattr(o, c) for c in COLUMNS} for o in outcomes]
    return pl.DataFrame(rows, schema=COLUMNS)


def write_outcomes(con: duckdb.DuckDBPyConnection, outcomes: Sequence[ActuationOutcome]) -> int:
    """Insert outcomes not stored yet (by ``outcome_id``); runs in the caller's transaction."""
    if not outcomes:
        return 0
    ensure_tables(con)
    frame = outcome_frame(outcomes).unique("outcome_id", keep="first")
    before = con.execute("SELECT count(*) FROM actuation_outcomes").fetchall()[0][0]
    con.register("_batch_actuation_outcomes", frame)
    try:
        con.execute(
            f"INSERT OR IGNORE INTO actuation_outcomes ({', '.join(COLUMNS)}) "
            f"SELECT {', '.join(COLUMNS)} FROM _batch_actuation_outcomes"
        ).fetchall()
    finally:
        con.unregister("_batch_actuation_outcomes")
    after = con.execute("SELECT count(*) FROM actuation_outcomes").fetchall()[0][0]
    return int(after) - int(before)


def outcomes_writer(
    con: duckdb.DuckDBPyConnection,
    decoded: Iterable[tuple[str, Any]],
    before_commit: Callable[[], None] | None = None,
) -> Callable[[], None] | None:
    """The sink's hook: a ``before_commit`` that also stores these outcomes, inside the
    same transaction as the offsets (``store.write_batch`` calls it before COMMIT)."""
    outcomes = [m for _, m in decoded if isinstance(m, ActuationOutcome)]
    if not outcomes:
        return before_commit

    def write() -> None:
        write_outcomes(con, outcomes)
        if before_commit is not None:
            before_commit()

    return write
