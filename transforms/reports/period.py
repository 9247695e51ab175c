"""The reporting period: a calendar month (or year) in the market's local time.

A month runs from local midnight on its first day to local midnight on the first day of the
next month, so it holds 92- and 100-interval DST days whole. Keys stay UTC epoch seconds
(``transforms.calendar``); local time is carried alongside for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import polars as pl

from transforms.calendar import MARKET_TZ, hourly_buckets, settlement_intervals
from transforms.reports.errors import ReportInputError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """``[first_day, end_day)`` in local dates of ``tz``; ``label`` names files and titles."""

    label: str
    first_day: date
    end_day: date
    tz: str = MARKET_TZ

    @classmethod
    def month(cls, text: str, tz: str = MARKET_TZ) -> Period:
        """``YYYY-MM`` -> that local calendar month."""
        m = _MONTH.match(text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ReportInputError(f"month {text!r}: expected YYYY-MM, e.g. 2025-11")
        year, month = int(m.group(1)), int(m.group(2))
        first = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        return cls(f"{year:04d}-{month:02d}", first, end, tz)

    @classmethod
    def year(cls, year: int, tz: str = MARKET_TZ) -> Period:
        return cls(f"{year:04d}", date(year, 1, 1), date(year + 1, 1, 1), tz)

    def months(self) -> list[Period]:
        """The calendar months inside this period, in order."""
        out: list[Period] = []
        d = self.first_day
        while d < self.end_day:
            out.append(Period.month(f"{d.year:04d}-{d.month:02d}", self.tz))
            d = out[-1].end_day
        return out

    @property
    def days(self) -> list[date]:
        n = (self.end_day - self.first_day).days
        return [self.first_day + timedelta(days=k) for k in range(n)]

    def _midnight_s(self, day: date) -> int:
        local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.tz))
        return int(local.timestamp())

    @property
    def start_s(self) -> int:
        """Local midnight of the first day, UTC epoch seconds."""
        return self._midnight_s(self.first_day)

    @property
    def end_s(self) -> int:
        """Local midnight after the last day, UTC epoch seconds (exclusive)."""
        return self._midnight_s(self.end_day)

    def summary_head(self, site_id: str) -> dict[str, object]:
        """The columns every report's summary starts with: site, period and its bounds."""
        return {
            "site_id": site_id,
            "period": self.label,
            "timezone": self.tz,
            "period_start_local": self.local_iso(self.start_s),
            "period_end_local": self.local_iso(self.end_s),
            "period_start_s": self.start_s,
            "period_end_s": self.end_s,
        }

    def local_iso(self, epoch_s: int) -> str:
        """``epoch_s`` as local ISO 8601 with its offset, e.g. 2025-11-01T00:00:00-05:00."""
        return datetime.fromtimestamp(epoch_s, ZoneInfo(self.tz)).isoformat()

    def utc_dates(self) -> set[date]:
        """UTC calendar dates the period touches (publication partitions are UTC dates)."""
        first = datetime.fromtimestamp(self.start_s, UTC).date()
        last = datetime.fromtimestamp(self.end_s - 1, UTC).date()
        return {first + timedelta(days=k) for k in range((last - first).days + 1)}

    def intervals(self) -> pl.DataFrame:
        """Every settlement interval of the period (``settlement_intervals`` columns)."""
        return _calendar(self.first_day, self.end_day, self.tz, "intervals")

    def hours(self) -> pl.DataFrame:
        """Every carbon hour of the period (``hourly_buckets`` columns)."""
        return _calendar(self.first_day, self.end_day, self.tz, "hours")


@lru_cache(maxsize=64)
def _calendar(first: date, end: date, tz: str, kind: str) -> pl.DataFrame:
    """Built day by day by ``transforms.calendar`` (a year takes ~1 s), so kept: a report
    asks for its period's calendar several times. Frames are immutable, sharing is safe."""
    make = settlement_intervals if kind == "intervals" else hourly_buckets
    days = [first + timedelta(days=k) for k in range((end - first).days)]
    return pl.concat([make(d, tz) for d in days])
