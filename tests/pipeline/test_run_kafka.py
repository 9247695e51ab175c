"""`spillway run` end to end on the real broker: an hour around the ECRS dispatch, closed
loop (simulator -> agents -> miner commands -> simulator), marts, reports and the summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from streams.settings import Settings

pytestmark = pytest.mark.kafka


def test_run_an_hour_around_the_dispatch(kafka_base_settings: Settings, tmp_path: Path) -> None:
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=kafka_base_settings.kafka_bootstrap_servers,
        SPILLWAY_HOME=str(tmp_path),
        COLUMNS="200",
    )
    exe = str(Path(sys.executable).with_name("spillway"))
    done = subprocess.run(
        [
            exe,
            "run",
            "--full-day",
            "--hours",
            "1",
            "--from-hour",
            "13.75",
            "--speed",
            "30",
            "--no-view",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout
    assert "net, $" in out and "settlement report:" in out, out
    (run,) = (tmp_path / "runs").iterdir()
    assert list((run / "reports").glob("settlement-*.html"))
    assert list((run / "reports").glob("carbon-*.html"))
    con = duckdb.connect(str(run / "marts" / "views.duckdb"), read_only=True)
    seconds, short = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE readings < 273) FROM site_power"
    ).fetchone()  # type: ignore[misc]
    assert seconds >= 3500 and short <= 5, (seconds, short)
    reasons = {
        r for (rs,) in con.execute("SELECT reasons FROM curtailment_events").fetchall() for r in rs
    }
    assert "grid" in reasons  # the 14:00 ECRS dispatch curtailed the miners
    obeyed = con.execute(
        "SELECT min(mining_w) FROM site_power WHERE ts_s >= 1751396400 + 600"
    ).fetchone()[0]  # type: ignore[index]
    before = con.execute("SELECT avg(mining_w) FROM site_power WHERE ts_s < 1751396400").fetchone()[
        0
    ]  # type: ignore[index]
    assert obeyed < 0.5 * before  # the simulated miners followed the commands
    con.close()
