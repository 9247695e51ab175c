"""``spillway sql``: read-only by parser, by read-only open, and by file-access limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from streams.cli import main
from streams.marts.publish import VIEWS_FILE, publish
from streams.marts.query import (
    MartsMissing,
    QueryRefused,
    check_read_only,
    connect_read_only,
    render,
    run_query,
)
from streams.marts.store import open_store
from tests.marts.test_publish import DAY, FakeGate, _write


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("q")
    con = open_store(root / "sink.duckdb")
    _write(con, DAY, 120, 1)
    publish(con, root / "marts", gate=FakeGate(), now_s=DAY + 200)
    con.close()
    return root / "marts"


REFUSED = [
    ("INSERT INTO site_power SELECT * FROM site_power", "INSERT"),
    ("UPDATE site_power SET ai_w = 0", "UPDATE"),
    ("DELETE FROM site_power", "DELETE"),
    ("CREATE TABLE x AS SELECT 1", "CREATE"),
    ("CREATE OR REPLACE VIEW site_power AS SELECT 1", "CREATE"),
    ("DROP VIEW site_power", "DROP"),
    ("ALTER VIEW site_power RENAME TO y", "ALTER"),
    ("COPY (SELECT * FROM site_power) TO 'out.csv'", "COPY"),
    ("COPY site_power FROM 'in.csv'", "COPY"),
    ("ATTACH 'other.duckdb' AS o", "ATTACH"),
    ("DETACH o", "DETACH"),
    ("INSTALL httpfs", "LOAD"),
    ("LOAD httpfs", "LOAD"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("SET enable_external_access = true", "SET"),
    ("RESET threads", "SET"),
    ("USE memory", "SET"),
    ("CALL duckdb_tables()", "CALL"),
    ("CHECKPOINT", "CALL"),
    ("EXPORT DATABASE 'dump'", "EXPORT"),
    ("BEGIN TRANSACTION", "TRANSACTION"),
    ("VACUUM", "VACUUM"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "EXPLAIN"),
    ("/* SELECT */ DELETE FROM site_power", "DELETE"),  # a comment does not fool the parser
    ("SELECT 1; DROP VIEW site_power", "one statement at a time"),
    ("select 1;\n-- harmless?\nDELETE FROM site_power", "one statement at a time"),
    ("", "no SQL statement"),
    ("SELEC 1", "does not parse"),
]


@pytest.mark.parametrize(("sql", "why"), REFUSED)
def test_writes_are_refused_by_the_parser(sql: str, why: str) -> None:
    with pytest.raises(QueryRefused, match=why):
        check_read_only(sql)


@pytest.mark.parametrize("sql", [
    "SELECT 1",
    "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
    "FROM site_power LIMIT 1",
    "VALUES (1), (2)",
    "DESCRIBE site_power",
    "SHOW TABLES",
    "SUMMARIZE site_power",
    "SELECT 'DROP TABLE x; DELETE FROM y' AS looks_bad_is_not",
])
def test_reads_pass(marts: Path, sql: str) -> None:
    check_read_only(sql)
    assert run_query(marts, sql).height >= 1


def test_cli_refuses_and_data_is_unchanged(marts: Path, capsys: Any) -> None:
    before = run_query(marts, "SELECT count(*) AS n, sum(ai_w) AS s FROM site_power").row(0)
    for sql, _ in REFUSED:
        with pytest.raises(SystemExit) as exc:
            main(["sql", "--marts", str(marts), sql])
        assert exc.value.code == 2, sql
        assert "spillway sql:" in capsys.readouterr().err
    assert run_query(marts, "SELECT count(*) AS n, sum(ai_w) AS s FROM site_power").row(0) \
        == before
    assert not (Path.cwd() / "out.csv").exists()


@pytest.mark.parametrize("sql", [
    "CREATE TABLE x AS SELECT 1",
    "DROP VIEW site_power",
    "INSERT INTO marts_catalog VALUES ('a', 'b', 'c')",
    "ATTACH ':memory:' AS m",
])
def test_read_only_open_stops_writes_even_past_the_parser(marts: Path, sql: str) -> None:
    con = connect_read_only(marts)
    try:
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    finally:
        con.close()


def test_file_access_is_limited_to_the_marts(marts: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    with pytest.raises(duckdb.Error, match="(?i)permission|disabled"):
        run_query(marts, f"SELECT * FROM read_csv('{outside}')")
    with pytest.raises(duckdb.Error):
        run_query(marts, "SELECT * FROM read_text('/etc/hostname')")


def test_formats(marts: Path, capsys: Any) -> None:
    sql = "SELECT ts_s, ai_w FROM site_power ORDER BY ts_s LIMIT 2"
    frame = run_query(marts, sql)
    assert render(frame, "csv").splitlines() == ["ts_s,ai_w", f"{DAY},100000000.0",
                                                 f"{DAY + 1},100000000.0"]
    assert json.loads(render(frame, "json")) == [{"ts_s": DAY, "ai_w": 1e8},
                                                 {"ts_s": DAY + 1, "ai_w": 1e8}]
    assert "ai_w" in render(frame, "table")
    with pytest.raises(SystemExit) as exc:
        main(["sql", "--marts", str(marts), "--format", "json", sql])
    assert exc.value.code == 0
    assert json.loads(capsys.readouterr().out)[0]["ts_s"] == DAY


def test_missing_marts_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(MartsMissing, match="spillway sink"):
        run_query(tmp_path, "SELECT 1")
    assert not (tmp_path / VIEWS_FILE).exists()
