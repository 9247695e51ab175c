"""The thin Parquet loader: manifest first, date partitions outside the period never opened,
the sink's table names accepted, broken publications named."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from streams.reports.loader import load_table
from tests.reports.synthetic import START_S
from transforms.reports.errors import NothingPublished, ReportInputError
from transforms.reports.period import Period

NOV = Period.month("2025-11")


def _power(ts: list[int], site: str = "s") -> pl.DataFrame:
    return pl.DataFrame({"site_id": site, "ts_s": ts, "ai_w": 1.0})


def _write(marts: Path, rel: str, frame: pl.DataFrame) -> None:
    (marts / rel).parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(marts / rel)


def test_partitions_outside_the_period_are_not_opened(tmp_path: Path) -> None:
    _write(tmp_path, "parquet/site_power/date=2025-11-01/part-05-g000001.parquet",
           _power([START_S, START_S + 1]))
    junk = tmp_path / "parquet/site_power/date=2025-10-15/part-00-g000001.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not parquet")  # reading it would fail
    got = load_table(tmp_path, "site_power_1s", NOV)
    assert got is not None
    assert got.published_as == "site_power" and got.how == "glob"
    assert got.rows == 2 and got.files == ("parquet/site_power/date=2025-11-01/"
                                           "part-05-g000001.parquet",)


@pytest.mark.parametrize(("rows", "site", "expected"), [
    ([START_S - 1, START_S, NOV.end_s - 1, NOV.end_s], None, [START_S, NOV.end_s - 1]),
    ([START_S, START_S + 1], "other", None),
])
def test_rows_are_cut_to_the_local_month_and_site(tmp_path: Path, rows: list[int],
                                                  site: str | None,
                                                  expected: list[int] | None) -> None:
    _write(tmp_path, "site_power/all.parquet", _power(rows))  # flat layout, no date folder
    if expected is None:
        with pytest.raises(NothingPublished, match="hold no rows for it"):
            load_table(tmp_path, "site_power_1s", NOV, site_id=site)
        return
    got = load_table(tmp_path, "site_power_1s", NOV, site_id=site)
    assert got is not None and got.frame["ts_s"].to_list() == expected


def test_manifest_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "_manifests").mkdir()
    (tmp_path / "_manifests" / "gen-000003.json").write_text(json.dumps(
        {"generation": 3, "published_at_s": 0, "tables": {"settlement": {
            "2025-11-02": "parquet/settlement/date=2025-11-02/part-g000003.parquet"}}}))
    with pytest.raises(ReportInputError, match="manifest gen 3 .* do not exist"):
        load_table(tmp_path, "settlement", NOV)


def test_nothing_published_names_the_place_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(NothingPublished, match=r"no Parquet files for 'carbon_hourly'.*"
                                               r"spillway sink"):
        load_table(tmp_path, "carbon_hourly", NOV)
    assert load_table(tmp_path, "carbon_hourly", NOV, required=False) is None
    with pytest.raises(ReportInputError, match="unknown table 'nope'"):
        load_table(tmp_path, "nope", NOV)


def test_columns_are_projected_and_must_exist(tmp_path: Path) -> None:
    _write(tmp_path, "site_power/all.parquet",
           _power([START_S]).with_columns(flags=pl.lit(["gap"])))
    got = load_table(tmp_path, "site_power_1s", NOV, columns=["ai_w"])
    assert got is not None and got.frame.columns == ["site_id", "ts_s", "ai_w"]
    with pytest.raises(ReportInputError, match=r"lacks column\(s\) \['mining_w'\]"):
        load_table(tmp_path, "site_power_1s", NOV, columns=["ai_w", "mining_w"])
