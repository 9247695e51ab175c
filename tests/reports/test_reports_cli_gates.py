"""The whole command with the real Great Expectations gates (GX import alone takes ~5-20 s
on this machine, hence slow): a good month passes every expectation, a broken mart fails
the gate and the page says FAIL next to the expectation; the command still writes it
and exits 3."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from streams.cli import main
from tests.reports.synthetic import marts_frames, publish


@pytest.mark.slow
def test_report_commands_with_real_gates(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    frames = marts_frames()
    good = tmp_path / "good"
    publish(good, {k: frames[k] for k in ("settlement", "interval_energy", "carbon_hourly")})
    for kind in ("settlement", "carbon"):
        with pytest.raises(SystemExit) as ex:
            main(["report", kind, "--month", "2025-11", "--marts", str(good), "--out",
                  str(tmp_path / "out")])
        assert ex.value.code == 0
    out = capsys.readouterr().out.split()
    assert {Path(p).name for p in out} >= {"settlement-site-a-2025-11.html",
                                            "carbon-site-a-2025-11.html"}
    text = (tmp_path / "out" / "settlement-site-a-2025-11.html").read_text()
    assert 'settlement: <span class="pass">PASS</span>' in text
    assert "expect_compound_columns_to_be_unique" in text

    bad = tmp_path / "bad"
    broken = frames["settlement"].with_columns(  # net no longer the sum of its components
        pl.when(pl.int_range(pl.len()) == 5).then(pl.col("net_usd") + Decimal("0.01"))
        .otherwise(pl.col("net_usd")).alias("net_usd"))
    publish(bad, {"settlement": broken})
    with pytest.raises(SystemExit) as ex:
        main(["report", "settlement", "--month", "2025-11", "--marts", str(bad), "--out",
              str(tmp_path / "bad-out")])
    assert ex.value.code == 3  # written, but the gate failed
    assert "quality gate FAILED for settlement" in capsys.readouterr().err
    text = (tmp_path / "bad-out" / "settlement-site-a-2025-11.html").read_text()
    assert 'settlement: <span class="fail">FAIL</span>' in text
    assert "QUALITY GATE FAILURES" in text
