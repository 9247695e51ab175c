"""Coincident-peak (4CP) transmission cost: peak intervals, peak-risk windows, avoided cost.

Rule (16 TAC §25.192(b)(1), looked up; domain notes): ERCOT transmission cost is allocated
on a customer's average demand in the 15-minute intervals of the ERCOT system's monthly
peaks in June, July, August and September (4CP). Next year's transmission charge is
``tag_kW x rate ($/kW-yr)``, the tag being the mean of the site's average kW in those four
intervals. The PUCT is weighing a 12CP allocation (every month's peak), so the method is a
parameter: ``4CP`` (June-September) or ``12CP`` (all twelve months); ``n`` = 4 or 12.

The peaks are known only after the month; before then a site acts on *risk windows* drawn
from a forecast (ERCOT's load forecast, or a peak-probability file), never a fixed list.
Months are the market's local months (America/Chicago). Pure: frames in, frames out.
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl

from streams.errors import TerminalError
from transforms.calendar import INTERVAL_S

CpMethod = Literal["4CP", "12CP"]
CP_MONTHS: dict[str, tuple[int, ...]] = {"4CP": (6, 7, 8, 9), "12CP": tuple(range(1, 13))}
MARKET_TZ = "America/Chicago"
_MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


class FourCpInputError(TerminalError, ValueError):
    """A peak, forecast or load input is missing a column or is malformed."""


def intervals_per_tag(method: CpMethod) -> int:
    """How many peak intervals the tag averages: 4 for 4CP, 12 for 12CP."""
    return len(CP_MONTHS[method])


def _local(col: str, tz: str) -> pl.Expr:
    return (
        pl.from_epoch(pl.col(col).cast(pl.Int64), time_unit="s")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(tz)
    )


def check_cp_months(intervals: pl.DataFrame, method: CpMethod, tz: str = MARKET_TZ) -> None:
    """Raise ``FourCpInputError`` if a peak interval lies outside the method's months
    (a 4CP interval in May would otherwise accrue a transmission charge ERCOT never bills)."""
    months = intervals.select(
        _local("interval_start_s", tz).dt.month().alias("m"), "interval_start_s"
    )
    bad = months.filter(~pl.col("m").is_in(list(CP_MONTHS[method])))
    if bad.height:
        raise FourCpInputError(
            f"{bad.height} peak interval(s) outside the {method} months "
            f"{CP_MONTHS[method]}, first interval_start_s="
            f"{bad['interval_start_s'][0]}"
        )


def monthly_peak_intervals(
    system_load: pl.DataFrame, method: CpMethod = "4CP", tz: str = MARKET_TZ
) -> pl.DataFrame:
    """``[year, month, interval_start_s, load_mw]``: the 15-minute interval of the highest
    ERCOT system load in each month of the method (``system_load``:
    ``[interval_start_s, load_mw]``, 15-minute averages). Ties go to the earliest."""
    for c in ("interval_start_s", "load_mw"):
        if c not in system_load.columns:
            raise FourCpInputError(f"system_load: missing column {c!r}")
    t = (
        system_load.with_columns(_local("interval_start_s", tz).alias("_t"))
        .with_columns(pl.col("_t").dt.year().alias("year"), pl.col("_t").dt.month().alias("month"))
        .filter(pl.col("month").is_in(list(CP_MONTHS[method])))
    )
    return (
        t.sort("load_mw", "interval_start_s", descending=[True, False])
        .group_by("year", "month")
        .first()
        .select("year", "month", "interval_start_s", "load_mw")
        .sort("year", "month")
    )


def read_posted_peaks(
    path: Path | str, method: CpMethod = "4CP", tz: str = MARKET_TZ
) -> pl.DataFrame:
    """``[interval_start_s]`` from a table of posted peak intervals, one row a year:
    ``Year,June,July,...`` with ``M/D/YYYY HH:MM`` local interval END (ERCOT's convention)
    in each month column. Only the method's months are read; an empty cell (a month not yet
    posted) is skipped."""
    p = Path(path)
    zone = ZoneInfo(tz)
    starts: list[int] = []
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for n, row in enumerate(reader, start=2):
            for m in CP_MONTHS[method]:
                cell = (row.get(_MONTH_NAMES[m - 1]) or "").strip()
                if not cell:
                    continue
                try:
                    end = datetime.strptime(cell, "%m/%d/%Y %H:%M").replace(tzinfo=zone)
                except ValueError as exc:
                    raise FourCpInputError(f"{p}, line {n}: {exc}") from exc
                starts.append(int(end.timestamp()) - INTERVAL_S)
    return pl.DataFrame({"interval_start_s": sorted(starts)}, schema={"interval_start_s": pl.Int64})


def _windows(flagged: pl.DataFrame) -> pl.DataFrame:
    """Consecutive flagged 15-minute intervals merged into ``[start_s, end_s]`` windows."""
    if flagged.height == 0:
        return pl.DataFrame(schema={"start_s": pl.Int64, "end_s": pl.Int64})
    s = flagged.select(pl.col("interval_start_s").cast(pl.Int64)).unique().sort("interval_start_s")
    s = s.with_columns(
        (pl.col("interval_start_s").diff().fill_null(INTERVAL_S) != INTERVAL_S)
        .cum_sum()
        .alias("_run")
    )
    return (
        s.group_by("_run")
        .agg(
            pl.col("interval_start_s").min().alias("start_s"),
            (pl.col("interval_start_s").max() + INTERVAL_S).alias("end_s"),
        )
        .sort("start_s")
        .select("start_s", "end_s")
    )


def peak_risk_windows(
    forecast: pl.DataFrame,
    method: CpMethod = "4CP",
    *,
    margin_fraction: float = 0.02,
    tz: str = MARKET_TZ,
) -> pl.DataFrame:
    """Risk windows ``[start_s, end_s]`` from a system load forecast
    (``[interval_start_s, forecast_mw]``, 15-minute): in the method's months, every interval
    whose forecast is within ``margin_fraction`` of the highest forecast of its month in the
    input (the forecast's horizon: rerun it as the forecast is updated). Consecutive
    intervals merge."""
    for c in ("interval_start_s", "forecast_mw"):
        if c not in forecast.columns:
            raise FourCpInputError(f"forecast: missing column {c!r}")
    t = (
        forecast.sort("interval_start_s")
        .with_columns(
            _local("interval_start_s", tz).dt.month().alias("_m"),
            _local("interval_start_s", tz).dt.year().alias("_y"),
        )
        .filter(pl.col("_m").is_in(list(CP_MONTHS[method])))
    )
    t = t.with_columns(pl.col("forecast_mw").max().over("_y", "_m").alias("_max"))
    return _windows(t.filter(pl.col("forecast_mw") >= (1 - margin_fraction) * pl.col("_max")))


def peak_probability_windows(
    probability: pl.DataFrame,
    method: CpMethod = "4CP",
    *,
    threshold: float = 0.5,
    tz: str = MARKET_TZ,
) -> pl.DataFrame:
    """Risk windows from a peak-probability file (``[interval_start_s, peak_probability]``,
    0..1, e.g. a vendor's 4CP alert feed): intervals at or above ``threshold``."""
    for c in ("interval_start_s", "peak_probability"):
        if c not in probability.columns:
            raise FourCpInputError(f"probability: missing column {c!r}")
    t = probability.filter(
        _local("interval_start_s", tz).dt.month().is_in(list(CP_MONTHS[method])),
        pl.col("peak_probability") >= threshold,
    )
    return _windows(t)


def avoided_transmission_cost(
    load: pl.DataFrame,
    peaks: pl.DataFrame,
    rate_usd_per_kw_year: Decimal,
    method: CpMethod = "4CP",
    tz: str = MARKET_TZ,
) -> pl.DataFrame:
    """Per peak year: ``[year, peaks, tag_kw, baseline_tag_kw, transmission_usd,
    avoided_usd]``.

    - ``load``: ``[interval_start_s, poi_mwh, baseline_mwh]``: metered energy, and what the
      site would have drawn without curtailment (metered + mining curtailed), per interval;
    - ``peaks``: ``[interval_start_s]`` of the method's peak intervals.

    tag = sum over the year's peaks of (MWh x 4000 kW/MWh per 15 min) / n; a peak with no
    load row counts 0 kW and ``peaks`` says how many were found. Money is exact, in cents.
    """
    for c in ("interval_start_s", "poi_mwh", "baseline_mwh"):
        if c not in load.columns:
            raise FourCpInputError(f"load: missing column {c!r}")
    n = intervals_per_tag(method)
    check_cp_months(peaks, method, tz)
    exact = pl.Decimal(38, 12)
    j = (
        peaks.select(pl.col("interval_start_s").cast(pl.Int64))
        .unique()
        .join(
            load.select(
                pl.col("interval_start_s").cast(pl.Int64),
                pl.col("poi_mwh").cast(exact),
                pl.col("baseline_mwh").cast(exact),
            ),
            on="interval_start_s",
            how="left",
        )
        .with_columns(_local("interval_start_s", tz).dt.year().alias("year"))
    )
    per_kw = Decimal(4000) / n
    out = j.group_by("year").agg(
        pl.col("poi_mwh").is_not_null().sum().alias("peaks"),
        pl.col("poi_mwh").fill_null(0).sum().alias("_mwh"),
        pl.col("baseline_mwh").fill_null(0).sum().alias("_base"),
    )
    kw = pl.lit(per_kw.quantize(Decimal("1e-9")), dtype=exact)
    rate = pl.lit(rate_usd_per_kw_year, dtype=exact)
    return (
        out.with_columns(
            (pl.col("_mwh") * kw).alias("tag_kw"),
            (pl.col("_base") * kw).alias("baseline_tag_kw"),
        )
        .with_columns(
            (pl.col("tag_kw") * rate).round(2).cast(pl.Decimal(38, 2)).alias("transmission_usd"),
            ((pl.col("baseline_tag_kw") - pl.col("tag_kw")) * rate)
            .round(2)
            .cast(pl.Decimal(38, 2))
            .alias("avoided_usd"),
        )
        .select("year", "peaks", "tag_kw", "baseline_tag_kw", "transmission_usd", "avoided_usd")
        .sort("year")
    )


RISK_FILE_KINDS = {"peak_probability": "probability", "forecast_mw": "forecast"}
"""A risk file's value column -> its kind: ``interval_start_s,peak_probability`` (0..1) or
``interval_start_s,forecast_mw`` (ERCOT's system load forecast, 15-minute)."""


def read_risk_file(path: Path | str) -> pl.DataFrame:
    """A peak-risk CSV: ``interval_start_s`` (UTC epoch s of the 15-minute interval) and one
    of ``peak_probability`` or ``forecast_mw``; raises ``FourCpInputError``."""
    p = Path(path)
    try:
        frame = pl.read_csv(p, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise FourCpInputError(f"{p}: cannot read: {exc}") from exc
    values = [c for c in RISK_FILE_KINDS if c in frame.columns]
    if "interval_start_s" not in frame.columns or len(values) != 1:
        raise FourCpInputError(
            f"{p}: expected columns interval_start_s and one of "
            f"{', '.join(RISK_FILE_KINDS)}, got {', '.join(frame.columns)}"
        )
    try:
        return frame.select(
            pl.col("interval_start_s").cast(pl.Int64), pl.col(values[0]).cast(pl.Float64)
        )
    except pl.exceptions.PolarsError as exc:
        raise FourCpInputError(f"{p}: not a number: {exc}") from exc


def risk_windows(
    risk: pl.DataFrame,
    method: CpMethod = "4CP",
    *,
    threshold: float = 0.5,
    margin_fraction: float = 0.02,
    tz: str = MARKET_TZ,
) -> pl.DataFrame:
    """``[start_s, end_s]`` windows of a ``read_risk_file`` frame: a probability file at
    ``threshold`` (``peak_probability_windows``), a load forecast within
    ``margin_fraction`` of its month's high (``peak_risk_windows``); the method's months only."""
    if "peak_probability" in risk.columns:
        return peak_probability_windows(risk, method, threshold=threshold, tz=tz)
    return peak_risk_windows(risk, method, margin_fraction=margin_fraction, tz=tz)
