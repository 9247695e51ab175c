"""Settlement calendar: interval counts on DST days, keys, local labels."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from transforms.calendar import (
    hour_start_s,
    hourly_buckets,
    interval_start_s,
    intervals_between,
    settlement_intervals,
)

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("day", "intervals", "hours"),
    [
        (date(2025, 3, 9), 92, 23),  # spring forward: 02:00-03:00 does not exist
        (date(2025, 11, 2), 100, 25),  # fall back: 01:00-02:00 twice
        (date(2025, 7, 1), 96, 24),
        (date(2024, 3, 10), 92, 23),
        (date(2024, 11, 3), 100, 25),
        (date(2025, 12, 31), 96, 24),
    ],
)
def test_interval_and_hour_counts(day: date, intervals: int, hours: int) -> None:
    iv = settlement_intervals(day)
    assert iv.height == intervals
    assert hourly_buckets(day).height == hours
    starts = iv["interval_start_s"].to_list()
    assert starts == list(range(starts[0], starts[0] + 900 * intervals, 900))
    midnight = datetime(day.year, day.month, day.day, tzinfo=CHICAGO)
    assert starts[0] == int(midnight.timestamp())
    assert iv["interval_index"].to_list() == list(range(1, intervals + 1))
    assert iv["hour_ending"].max() == hours
    assert (iv["interval_end_s"] - iv["interval_start_s"]).unique().to_list() == [900]


def test_fall_back_day_marks_the_repeated_hour() -> None:
    iv = settlement_intervals(date(2025, 11, 2))
    repeated = iv.filter(pl.col("repeated_hour"))
    assert repeated.height == 4
    # 01:00 CST on 2025-11-02 is 07:00 UTC.
    assert repeated["interval_start_s"][0] == int(datetime(2025, 11, 2, 7, tzinfo=ZoneInfo("UTC"))
                                                  .timestamp())
    assert repeated["interval_start_local"].dt.hour().to_list() == [1, 1, 1, 1]


def test_spring_day_skips_two_oclock() -> None:
    iv = settlement_intervals(date(2025, 3, 9))
    assert 2 not in iv["interval_start_local"].dt.hour().to_list()
    assert not iv["repeated_hour"].any()


@pytest.mark.parametrize(
    ("ts", "interval", "hour"),
    [(0, 0, 0), (899, 0, 0), (900, 900, 0), (3599, 2700, 0), (3600, 3600, 3600),
     (1751346001, 1751346000, 1751346000)],
)
def test_keys_of_instants(ts: int, interval: int, hour: int) -> None:
    f = pl.DataFrame({"ts": [ts]}).select(interval_start_s(pl.col("ts")).alias("i"),
                                          hour_start_s(pl.col("ts")).alias("h"))
    assert f.row(0) == (interval, hour)


def test_intervals_between_rejects_off_grid() -> None:
    assert intervals_between(0, 2700)["interval_start_s"].to_list() == [0, 900, 1800]
    with pytest.raises(ValueError, match="not on the 15-minute grid"):
        intervals_between(5, 900)
