"""Read-only SQL over the published marts (what ``spillway sql`` runs).

Three independent locks keep a query from changing anything:

1. every statement is classified by DuckDB's own parser (``duckdb.extract_statements``),
   and only SELECT passes (DuckDB parses WITH, VALUES, FROM-first, DESCRIBE, SHOW and
   SUMMARIZE as SELECT); EXPLAIN is refused too, since EXPLAIN ANALYZE runs its statement
   (e.g. a COPY ... TO). A regex could be fooled by comments or literals; the parser is not;
2. ``views.duckdb`` is opened with ``read_only=True``;
3. file access is limited to the marts folder and the configuration is locked, so a SELECT
   cannot read other files or re-enable anything.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from streams.errors import TerminalError
from streams.marts.publish import VIEWS_FILE

ALLOWED = frozenset({"SELECT"})
FORMATS = ("table", "csv", "json")


class QueryRefused(TerminalError, ValueError):
    """The SQL is not a read-only query; nothing was run."""


class MartsMissing(TerminalError, FileNotFoundError):
    """No published marts at the expected place (run the sink, which publishes)."""


def statement_types(sql: str) -> list[str]:
    """DuckDB's statement type of each statement in ``sql`` (e.g. ``["SELECT", "DROP"]``).

    Raises ``QueryRefused`` if the SQL does not parse."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"the SQL does not parse: {exc}") from exc
    return [s.type.name for s in statements]


def check_read_only(sql: str) -> None:
    """Raise ``QueryRefused`` unless ``sql`` is exactly one SELECT statement."""
    kinds = statement_types(sql)
    if not kinds:
        raise QueryRefused("no SQL statement given")
    if len(kinds) > 1:
        raise QueryRefused(f"one statement at a time, got {len(kinds)} ({', '.join(kinds)})")
    if kinds[0] not in ALLOWED:
        raise QueryRefused(
            f"refused: {kinds[0]} statement. The marts are read-only; only SELECT (WITH, "
            "DESCRIBE, SHOW, SUMMARIZE) queries run here."
        )


def connect_read_only(marts: Path) -> duckdb.DuckDBPyConnection:
    """Open the published views read-only, with file access limited to ``marts``."""
    views = marts / VIEWS_FILE
    if not views.exists():
        raise MartsMissing(
            f"no published marts at {views}: run `spillway sink` (it publishes) "
            "or `spillway sink publish` first"
        )
    con = duckdb.connect(str(views), read_only=True)
    con.execute("SET allowed_directories = ?", [[str(marts.resolve()) + "/"]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(marts: Path, sql: str, params: Sequence[object] | None = None) -> pl.DataFrame:
    """Check, then run one read-only query on the published marts; returns its rows."""
    check_read_only(sql)
    con = connect_read_only(marts)
    try:
        frame: pl.DataFrame = con.sql(sql, params=list(params) if params else None).pl()
        return frame
    finally:
        con.close()


def render(frame: pl.DataFrame, fmt: str) -> str:
    """``table`` (aligned text), ``csv`` or ``json`` (one array of objects)."""
    if fmt == "csv":
        buf = io.StringIO()
        frame.write_csv(buf)
        return buf.getvalue()
    if fmt == "json":
        return json.dumps(frame.to_dicts(), default=str, indent=1)
    if fmt == "table":
        with pl.Config(
            tbl_rows=-1,
            tbl_cols=-1,
            tbl_width_chars=200,
            fmt_str_lengths=80,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=False,
        ):
            return str(frame)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
