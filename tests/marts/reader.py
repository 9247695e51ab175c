"""A BI-like reader process: polls the published marts through DuckDB and through
SQLAlchemy (duckdb-engine), as Superset or Metabase would, and prints one JSON line per
poll. Run: ``python -m tests.marts.reader <marts dir> <seconds>``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb
import sqlalchemy as sa


def poll(views: Path) -> dict[str, object]:
    con = duckdb.connect(str(views), read_only=True)
    try:
        row = con.execute("SELECT count(*), count(DISTINCT ts_s) FROM site_power").fetchone()
        gen = con.execute("SELECT generation FROM marts_publication").fetchone()
    finally:
        con.close()
    engine = sa.create_engine(f"duckdb:///{views}", connect_args={"read_only": True},
                              poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        via_sa = c.execute(sa.text("SELECT count(*) FROM site_power")).scalar_one()
        sa_gpu = c.execute(sa.text("SELECT coalesce(sum(readings), 0) "
                                   "FROM telemetry_gpu_1m")).scalar_one()
    engine.dispose()
    assert row is not None and gen is not None
    return {"duckdb": row[0], "distinct": row[1], "generation": gen[0],
            "sqlalchemy": via_sa, "gpu_readings": int(sa_gpu)}


def main() -> None:
    marts, seconds = Path(sys.argv[1]), float(sys.argv[2])
    views = marts / "views.duckdb"
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if views.exists():
            try:
                out: dict[str, object] = poll(views)
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
                out = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(out), flush=True)
        time.sleep(0.2)


if __name__ == "__main__":
    main()
