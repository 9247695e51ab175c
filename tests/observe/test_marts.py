"""Reading the published marts: only the manifest's files, month to date in local time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from streams.observe.marts import MartsReader, month_start_s, read_marts
from tests.observe.helpers import publish_marts, settlement


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


NOW = ts("2025-11-13T12:00:00")
# America/Chicago is UTC-5 on 2025-11-01 (DST ends on 2 November): the local month starts
# at 05:00Z, so the 04:45Z interval belongs to October.
OCT_LOCAL = ts("2025-11-01T04:45:00")
NOV_FIRST = ts("2025-11-01T05:00:00")
NOV_LATER = ts("2025-11-12T10:00:00")


@pytest.mark.parametrize(
    ("now", "tz", "start"),
    [
        (NOW, "UTC", ts("2025-11-01T00:00:00")),
        (NOW, "America/Chicago", NOV_FIRST),
        (ts("2025-07-04T12:00:00"), "America/Chicago", ts("2025-07-01T05:00:00")),
        (ts("2026-01-01T03:00:00"), "America/Chicago", ts("2025-12-01T06:00:00")),  # CST
    ],
)
def test_month_start(now, tz, start):
    assert month_start_s(now, tz) == start


def test_nothing_published_is_a_normal_state(tmp_path):
    view = read_marts(tmp_path / "marts", now_s=NOW)
    assert view.status == "none"
    assert "nothing published yet" in view.message
    assert view.as_dict()["intervals"] == []


def test_unreadable_publication_is_reported(tmp_path):
    (tmp_path / "_manifests").mkdir()
    (tmp_path / "_manifests" / "gen-000001.json").write_text("{not json")
    view = read_marts(tmp_path, now_s=NOW)
    assert view.status == "error"
    assert "gen-000001.json" in view.message


def test_settlement_month_to_date_is_exact_and_local(tmp_path):
    publish_marts(tmp_path, NOW - 60, {"settlement": {
        "2025-11-01": settlement([("s1", OCT_LOCAL, "1.5", "100.01"),
                                  ("s1", NOV_FIRST, "2.25", "10.01"),
                                  ("s2", NOV_FIRST, "9.0", "999.99")]),
        "2025-11-12": settlement([("s1", NOV_LATER, "0.5", "-0.02")]),
    }})
    # A file of an older generation that no manifest names must not be counted.
    old = tmp_path / "parquet/settlement/date=2025-11-12/part-g000001.parquet"
    settlement([("s1", NOV_LATER, "7.0", "7000.00")]).write_parquet(old)

    view = read_marts(tmp_path, now_s=NOW, site_id="s1", tz="America/Chicago")
    assert view.status == "ok" and view.generation == 2
    assert view.intervals_table == "settlement"
    assert view.month == "2025-11"
    # November (local) of s1: 10.01 - 0.02 = 9.99 USD; 2.25 + 0.5 = 2.75 MWh; 2 intervals.
    assert view.month_to_date == {"poi_mwh": Decimal("2.75"), "net_usd": Decimal("9.99"),
                                  "intervals": 2}
    assert [r["interval_start_s"] for r in view.intervals] == [OCT_LOCAL, NOV_FIRST, NOV_LATER]
    assert view.as_dict()["month_to_date"]["net_usd"] == "9.99"


def test_interval_energy_when_settlement_is_not_published(tmp_path):
    energy = pl.DataFrame({"site_id": ["s1", "s1"], "interval_start_s": [NOV_FIRST, NOV_LATER],
                           "ai_mwh": [47.5, 50.0], "total_mwh": [77.5, 80.0],
                           "reconciled": [True, False]})
    carbon = pl.DataFrame({"site_id": ["s1"], "hour_start_s": [NOV_LATER],
                           "total_mwh": [310.0], "location_g": [1.07632e8],
                           "avoided_g": [None]}, schema_overrides={"avoided_g": pl.Float64})
    publish_marts(tmp_path, NOW - 60, {"interval_energy": {"2025-11-01": energy},
                       "carbon_hourly": {"2025-11-12": carbon}})
    view = read_marts(tmp_path, now_s=NOW, site_id="s1")
    assert view.intervals_table == "interval_energy"
    assert view.month_to_date == {"ai_mwh": pytest.approx(97.5),
                                  "total_mwh": pytest.approx(157.5), "intervals": 2}
    assert view.carbon_month_to_date == {"total_mwh": 310.0, "location_g": 1.07632e8,
                                         "avoided_g": None, "hours": 1}
    assert view.intervals[0]["reconciled"] is True


def test_reader_rereads_only_on_a_new_generation(tmp_path):
    reader = MartsReader(tmp_path)
    assert reader.read(now_s=NOW, site_id="s1").status == "none"
    one = settlement([("s1", NOV_LATER, "1", "1.00")])
    publish_marts(tmp_path, NOW - 60, {"settlement": {"2025-11-12": one}}, gen=1)
    first = reader.read(now_s=NOW, site_id="s1")
    assert first.generation == 1
    assert reader.read(now_s=NOW, site_id="s1") is first
    publish_marts(tmp_path, NOW - 60,
                  {"settlement": {"2025-11-12": settlement([("s1", NOV_LATER, "1", "2.00")])}},
                  gen=2)
    second = reader.read(now_s=NOW, site_id="s1")
    assert second.generation == 2
    assert second.month_to_date["net_usd"] == Decimal("2.00")
