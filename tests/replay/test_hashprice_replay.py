"""Hashprice replayed as published: a day of network data is sent at the day's end."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from schemas.grid import HashpriceSignal
from streams.replay import scenario
from streams.replay.records import merge
from transforms.sources import SHARED_DATA

COINMETRICS = SHARED_DATA / "bitcoin_network" / "coinmetrics_btc_daily_2020-02-23_to_2020-03-29.csv"
DAY = 86_400.0


@pytest.mark.skipif(not COINMETRICS.exists(), reason="shared data not mounted")
def test_scenario_hashprice_is_sent_at_each_days_end(tmp_path: Path) -> None:
    toml = tmp_path / "hp.toml"
    toml.write_text(
        f"""
name = "hashprice"
site_id = "s1"
start_utc = "2025-07-01T00:00:00Z"
end_utc = "2025-07-04T00:00:00Z"
[[hashprice]]
file = "{COINMETRICS}"
format = "coinmetrics_daily"
from_utc = "2020-03-11T00:00:00Z"
"""
    )
    sc = scenario.load(toml)
    recs = list(merge(scenario.sources(sc)))
    assert {r.topic for r in recs} == {"grid.hashprice.v1"}
    signals = [msgspec.json.decode(r.value, type=HashpriceSignal) for r in recs]
    # Recorded 2020-03-10 .. 2020-03-12 are published at the ends of those days, which the
    # shift puts at 2025-07-01 .. 2025-07-03 00:00 (03-10's end is the window's start).
    assert [s.published_s - sc.start_s for s in signals] == [0.0, DAY, 2 * DAY]
    assert all(r.ts_s == s.published_s == s.ts_s + DAY for r, s in zip(recs, signals, strict=True))
    # 2020-03-12, the crash (third signal): its lower hashprice is known only from the end
    # of that day; until then the controller keeps 2020-03-11's.
    assert signals[1].usd_per_ph_day > 1.4 * signals[2].usd_per_ph_day


def test_unknown_hashprice_format_names_the_file(tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("time\n")
    toml = tmp_path / "bad.toml"
    toml.write_text(
        'name = "x"\nsite_id = "s1"\nstart_utc = "2025-07-01T00:00:00Z"\n'
        'end_utc = "2025-07-02T00:00:00Z"\n'
        f'[[hashprice]]\nfile = "{data}"\nformat = "csv"\n'
    )
    with pytest.raises(scenario.ScenarioError, match="hashprice\\[0\\].*not one of"):
        scenario.load(toml)
