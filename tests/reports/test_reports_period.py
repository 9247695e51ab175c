"""The reporting period: local months with their DST days, checked against zoneinfo."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from transforms.reports.errors import ReportInputError
from transforms.reports.period import Period

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(("text", "days", "intervals", "hours", "dst_day", "dst_intervals"), [
    ("2025-11", 30, 30 * 96 + 4, 30 * 24 + 1, date(2025, 11, 2), 100),
    ("2025-03", 31, 31 * 96 - 4, 31 * 24 - 1, date(2025, 3, 9), 92),
    ("2023-01", 31, 31 * 96, 31 * 24, None, None),
    ("2024-02", 29, 29 * 96, 29 * 24, None, None),  # leap year
    ("2023-12", 31, 31 * 96, 31 * 24, None, None),  # year rollover of end_day
])
def test_month_holds_whole_local_days(text: str, days: int, intervals: int, hours: int,
                                      dst_day: date | None, dst_intervals: int | None) -> None:
    p = Period.month(text)
    assert len(p.days) == days
    assert p.intervals().height == intervals
    assert p.hours().height == hours
    first = p.days[0]
    assert p.start_s == int(datetime(first.year, first.month, 1, tzinfo=CHICAGO).timestamp())
    assert (p.end_s - p.start_s) == intervals * 900
    per_day = dict(p.intervals().group_by("market_date").len().iter_rows())
    if dst_day is not None:
        assert per_day.pop(dst_day) == dst_intervals
    assert set(per_day.values()) == {96}


@pytest.mark.parametrize("bad", ["2025-13", "2025-00", "2025-1", "25-11", "2025/11", "",
                                 "november"])
def test_bad_month_text_is_refused(bad: str) -> None:
    with pytest.raises(ReportInputError, match="YYYY-MM"):
        Period.month(bad)


def test_utc_dates_cover_the_local_month_edges() -> None:
    p = Period.month("2025-11")  # 2025-11-01 05:00Z .. 2025-12-01 06:00Z
    dates = p.utc_dates()
    assert min(dates) == date(2025, 11, 1) and max(dates) == date(2025, 12, 1)
    assert len(dates) == 31


def test_year_splits_into_its_twelve_months() -> None:
    y = Period.year(2023)
    months = y.months()
    assert [m.label for m in months] == [f"2023-{k:02d}" for k in range(1, 13)]
    assert months[0].start_s == y.start_s and months[-1].end_s == y.end_s
    assert all(a.end_s == b.start_s for a, b in zip(months, months[1:], strict=False))
    assert y.end_s - y.start_s == 365 * 86400  # the two DST days cancel out
