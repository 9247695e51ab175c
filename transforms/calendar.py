"""Settlement calendar: 15-minute settlement intervals and hourly carbon buckets.

All keys are UTC epoch seconds (``interval_start_s``, ``hour_start_s``); the market's local
time (America/Chicago for ERCOT) is carried alongside for reports. Central time is a whole
number of hours off UTC, so a 15-minute UTC grid and a local 15-minute grid coincide and
``interval_start_s = ts_s - ts_s % 900`` is the interval key for any instant.

A market day runs from local midnight to local midnight: 96 intervals normally, 92 on the
spring-forward day and 100 on the fall-back day.

Hour ending follows ERCOT's labels: the local clock hour the interval ends in, so the hour
from 03:00 CDT on the spring day is HE04 (HE03 does not exist), and on the fall-back day the
hour from 01:00 is HE02 twice, the second pass (01:00 CST) flagged ``DSTFlag=Y`` and shown as
"02*" ("DST Repeated Hour", ERCOT market notices W-A092617-01 of 2017-09-26 and
M-A092121-01 of 2022-09-21; the same flag as NP6-905-CD's ``DSTFlag``). The key stays
``interval_start_s``; ``(market_date, hour_ending, repeated_hour)`` is unique too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

MARKET_TZ = "America/Chicago"
INTERVAL_S = 900
HOUR_S = 3600

COLUMNS: dict[str, dict[str, str]] = {
    "settlement_intervals": {
        "interval_start_s": "interval start, UTC epoch seconds (key; multiple of 900)",
        "interval_end_s": "interval end, UTC epoch seconds (start + 900)",
        "interval_start_utc": "interval start, UTC timestamp",
        "interval_start_local": "interval start, timestamp in market local time (America/Chicago)",
        "market_date": "market (local) calendar date the interval belongs to",
        "interval_index": "1-based position of the interval within its market day (1..92/96/100)",
        "hour_ending": "ERCOT hour ending of the interval, 1..24 (no 3 on the spring day, 2 "
                       "twice on the fall-back day)",
        "hour_ending_label": "ERCOT hour ending label (text): HE01..HE24, HE02* when repeated",
        "repeated_hour": "true for the second (CST) pass of the fall-back hour (ERCOT DSTFlag=Y)",
    },
    "hourly_buckets": {
        "hour_start_s": "hour start, UTC epoch seconds (key; multiple of 3600)",
        "hour_start_utc": "hour start, UTC timestamp",
        "hour_start_local": "hour start, timestamp in market local time (America/Chicago)",
        "market_date": "market (local) calendar date",
        "hour_ending": "ERCOT hour ending, 1..24 (no 3 on the spring day, 2 twice on fall-back)",
        "hour_ending_label": "ERCOT hour ending label (text): HE01..HE24, HE02* when repeated",
        "repeated_hour": "true for the second (CST) pass of the fall-back hour (ERCOT DSTFlag=Y)",
    },
}


def _day_bounds_s(day: date, tz: str) -> tuple[int, int]:
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def _local_frame(starts: list[int], tz: str, key: str) -> pl.DataFrame:
    utc = pl.from_epoch(pl.Series(key, starts, dtype=pl.Int64), time_unit="s")
    frame = pl.DataFrame({key: starts}, schema={key: pl.Int64})
    return frame.with_columns(
        utc.dt.replace_time_zone("UTC").alias(key[:-2] + "_utc"),
        utc.dt.replace_time_zone("UTC").dt.convert_time_zone(tz).alias(key[:-2] + "_local"),
    )


def settlement_intervals(day: date, tz: str = MARKET_TZ) -> pl.DataFrame:
    """The 15-minute settlement intervals of one market day, in order.

    Columns: see ``COLUMNS["settlement_intervals"]``.
    """
    start_s, end_s = _day_bounds_s(day, tz)
    starts = list(range(start_s, end_s, INTERVAL_S))
    frame = _local_frame(starts, tz, "interval_start_s")
    return frame.with_columns(
        (pl.col("interval_start_s") + INTERVAL_S).alias("interval_end_s"),
        pl.lit(day).alias("market_date"),
        (pl.int_range(1, pl.len() + 1, dtype=pl.Int32)).alias("interval_index"),
        *_hour_ending(pl.col("interval_start_local")),
    ).select(list(COLUMNS["settlement_intervals"]))


def _hour_ending(local: pl.Expr) -> list[pl.Expr]:
    """``hour_ending`` (local clock hour + 1), ``repeated_hour`` and their ERCOT label."""
    he = (local.dt.hour().cast(pl.Int32) + 1).alias("hour_ending")
    repeated = _repeated_hour(local).alias("repeated_hour")
    label = pl.format("HE{}{}", he.cast(pl.String).str.zfill(2),
                      pl.when(repeated).then(pl.lit("*")).otherwise(pl.lit("")))
    return [he, label.alias("hour_ending_label"), repeated]


def _repeated_hour(local: pl.Expr) -> pl.Expr:
    """True for instants in the second pass of an ambiguous local hour (standard time)."""
    naive = local.dt.replace_time_zone(None)
    return (naive.cum_count().over(naive) > 1)


def hourly_buckets(day: date, tz: str = MARKET_TZ) -> pl.DataFrame:
    """The hours of one market day (23, 24 or 25) for hourly carbon accounting."""
    start_s, end_s = _day_bounds_s(day, tz)
    frame = _local_frame(list(range(start_s, end_s, HOUR_S)), tz, "hour_start_s")
    return frame.with_columns(
        pl.lit(day).alias("market_date"),
        *_hour_ending(pl.col("hour_start_local")),
    ).select(list(COLUMNS["hourly_buckets"]))


def interval_start_s(ts_s: pl.Expr) -> pl.Expr:
    """The settlement interval key (UTC epoch seconds) of an epoch-seconds expression."""
    ts = ts_s.cast(pl.Int64)
    return ts - ts % INTERVAL_S


def hour_start_s(ts_s: pl.Expr) -> pl.Expr:
    """The carbon hour key (UTC epoch seconds) of an epoch-seconds expression."""
    ts = ts_s.cast(pl.Int64)
    return ts - ts % HOUR_S


def intervals_between(start_s: int, end_s: int) -> pl.DataFrame:
    """All interval keys covering ``[start_s, end_s)``; ``start_s`` must be on the grid."""
    if start_s % INTERVAL_S:
        raise ValueError(f"intervals_between: start_s={start_s} is not on the 15-minute grid")
    return pl.DataFrame(
        {"interval_start_s": list(range(start_s, end_s, INTERVAL_S))},
        schema={"interval_start_s": pl.Int64},
    )
