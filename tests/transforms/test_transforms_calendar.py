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
    assert iv["hour_ending"].max() == 24  # ERCOT labels: never HE25, even on a 25-hour day
    assert iv["hour_ending"].n_unique() == 23 if hours == 23 else 24
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


UTC_ = ZoneInfo("UTC")


def _at(y: int, mo: int, d: int, h: int, mi: int) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=UTC_).timestamp())


@pytest.mark.parametrize(
    ("day", "start_utc", "local", "he", "label", "repeated"),
    [
        # 2025-03-09 spring forward: 02:00 CST becomes 03:00 CDT; HE03 does not exist.
        (date(2025, 3, 9), _at(2025, 3, 9, 6, 0), "00:00 CST", 1, "HE01", False),
        (date(2025, 3, 9), _at(2025, 3, 9, 7, 45), "01:45 CST", 2, "HE02", False),
        (date(2025, 3, 9), _at(2025, 3, 9, 8, 0), "03:00 CDT", 4, "HE04", False),
        (date(2025, 3, 9), _at(2025, 3, 10, 4, 45), "23:45 CDT", 24, "HE24", False),
        # 2025-11-02 fall back: 01:00-02:00 twice; the CST pass is HE02* (DSTFlag=Y).
        (date(2025, 11, 2), _at(2025, 11, 2, 5, 0), "00:00 CDT", 1, "HE01", False),
        (date(2025, 11, 2), _at(2025, 11, 2, 6, 0), "01:00 CDT", 2, "HE02", False),
        (date(2025, 11, 2), _at(2025, 11, 2, 6, 45), "01:45 CDT", 2, "HE02", False),
        (date(2025, 11, 2), _at(2025, 11, 2, 7, 0), "01:00 CST", 2, "HE02*", True),
        (date(2025, 11, 2), _at(2025, 11, 2, 7, 45), "01:45 CST", 2, "HE02*", True),
        (date(2025, 11, 2), _at(2025, 11, 2, 8, 0), "02:00 CST", 3, "HE03", False),
        (date(2025, 11, 2), _at(2025, 11, 3, 5, 45), "23:45 CST", 24, "HE24", False),
    ],
)
def test_hour_ending_on_dst_days(day: date, start_utc: int, local: str, he: int, label: str,
                                 repeated: bool) -> None:
    iv = settlement_intervals(day)
    row = iv.filter(pl.col("interval_start_s") == start_utc).row(0, named=True)
    assert row["interval_start_local"].strftime("%H:%M %Z") == local
    assert (row["hour_ending"], row["hour_ending_label"], row["repeated_hour"]) == \
        (he, label, repeated)
    hours = hourly_buckets(day).filter(pl.col("hour_start_s") == start_utc - start_utc % 3600)
    assert hours.select("hour_ending", "hour_ending_label", "repeated_hour").row(0) == \
        (he, label, repeated)


@pytest.mark.parametrize(("day", "labels"), [
    (date(2025, 3, 9), ["HE01", "HE02", *(f"HE{h:02d}" for h in range(4, 25))]),
    (date(2025, 11, 2), ["HE01", "HE02", "HE02*", *(f"HE{h:02d}" for h in range(3, 25))]),
])
def test_dst_day_hour_labels_in_order(day: date, labels: list[str]) -> None:
    assert hourly_buckets(day)["hour_ending_label"].to_list() == labels
    iv = settlement_intervals(day)
    assert iv["hour_ending_label"].unique(maintain_order=True).to_list() == labels
    # Each labelled hour holds four 15-minute intervals, the repeated one included.
    assert iv.group_by("hour_ending_label").len()["len"].unique().to_list() == [4]
