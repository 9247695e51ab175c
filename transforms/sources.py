"""Readers of the real data files in ``shared/data`` (see its SOURCES.md) into tidy frames.

Each reader is pure (path in, frame out), returns UTC keys (``*_s`` epoch seconds plus
``*_utc`` timestamps), and raises :class:`SourceError` naming the file, line and column of
the first bad value. Prices are ``pl.Decimal(18, 6)`` parsed straight from the text (never
through a float), so settlement stays exact.

Time conventions found in the files:

- ERCOT 15-minute RTM CSV: naive local Central prevailing time, interval *start*. A repeated
  fall-back hour would show each local time twice: the first is CDT, the second CST.
- ERCOT native API (np6-905-cd, np4-190-cd): hour *ending* plus ``DSTFlag``; ``Y`` marks the
  repeated (second, CST) hour of the fall-back day.
- ERCOT fuel-mix TSV: one column per interval labelled by its *end* (``0:00`` = 24:00); the
  fall-back day adds ``01:15 (DST)`` … ``02:00 (DST)``. In 2021-11-07 the plain ``1:15``–``2:00``
  columns continue smoothly from ``1:00`` and the ``(DST)`` ones lead into ``2:15`` (total
  generation 8318→8210, then 8186→8140, then 8107 MWh), so ``(DST)`` is the second (CST) pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import polars as pl

from streams.errors import TerminalError
from transforms.calendar import MARKET_TZ, settlement_intervals


def shared_data_dir() -> Path:
    """``shared/data`` beside the checkout (where CI puts ``shared``), else this machine's
    ``/work/shared/data``; ``SPILLWAY_SHARED_DATA`` names another place."""
    named = os.environ.get("SPILLWAY_SHARED_DATA")
    if named:
        return Path(named)
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")


SHARED_DATA = shared_data_dir()

PRICE = pl.Decimal(18, 6)
"""Price dtype: USD/MWh with 6 decimals (ERCOT publishes 2)."""

COLUMNS: dict[str, dict[str, str]] = {
    "prices_15min": {
        "interval_start_s": "interval start, UTC epoch seconds",
        "interval_start_utc": "interval start, UTC timestamp",
        "interval_end_utc": "interval end, UTC timestamp",
        "settlement_point": "ERCOT settlement point name, e.g. LZ_WEST, HB_HUBAVG",
        "price_usd_per_mwh": "settlement point price, USD/MWh (Decimal 18,6)",
    },
    "rt_spp_api": {
        "interval_start_s": "interval start, UTC epoch seconds",
        "interval_start_utc": "interval start, UTC timestamp",
        "interval_end_utc": "interval end, UTC timestamp",
        "settlement_point": "ERCOT settlement point name",
        "price_usd_per_mwh": "settlement point price, USD/MWh (Decimal 18,6)",
        "settlement_point_type": "ERCOT type: RN, HU, AH, SH, LZ or LZEW (one LZ type kept)",
    },
    "prices_hourly": {
        "hour_start_s": "hour start, UTC epoch seconds",
        "hour_start_utc": "hour start, UTC timestamp",
        "hour_end_utc": "hour end, UTC timestamp",
        "settlement_point": "ERCOT settlement point name",
        "price_usd_per_mwh": "day-ahead settlement point price, USD/MWh (Decimal 18,6)",
    },
    "carbon_intensity_hourly": {
        "hour_start_s": "hour start, UTC epoch seconds",
        "hour_start_utc": "hour start, UTC timestamp",
        "zone_id": "Electricity Maps zone id (US-TEX-ERCO)",
        "ci_direct_g_per_kwh": "direct (combustion) carbon intensity, gCO2eq/kWh",
        "ci_lca_g_per_kwh": "life-cycle carbon intensity, gCO2eq/kWh",
        "low_carbon_pct": "low-carbon share of consumption, percent",
        "renewable_pct": "renewable share of consumption, percent",
        "estimated": "true when Electricity Maps estimated the hour",
    },
    "fuel_mix": {
        "interval_start_s": "interval (15 min) or hour start, UTC epoch seconds",
        "interval_start_utc": "interval start, UTC timestamp",
        "interval_end_utc": "interval end, UTC timestamp",
        "fuel": "fuel code: WND SUN WAT OIL NG COL NUC OTH (ERCOT names mapped, see FUEL_CODES)",
        "generation_mwh": "net generation in the interval, MWh (can be negative for OTH)",
    },
    "avg_ci_hourly": {
        "hour_start_s": "hour start, UTC epoch seconds",
        "hour_start_utc": "hour start, UTC timestamp",
        "avg_ci_g_per_kwh": "average grid carbon intensity published with the mix, gCO2/kWh",
    },
    "btc_network_daily": {
        "day": "UTC calendar day",
        "start_s": "day start, UTC epoch seconds",
        "block_count": "blocks mined in the day, count",
        "difficulty": "mean network difficulty, dimensionless",
        "hashrate_ths": "mean network hashrate, TH/s",
        "fees_btc": "transaction fees paid in the day, BTC",
        "issuance_btc": "new coins issued in the day (block subsidy), BTC",
        "price_usd_per_btc": "BTC reference price, USD/BTC",
    },
    "btc_snapshot": {
        "captured_at_utc": "when the price snapshot was captured, UTC",
        "hashprice_usd_per_ph_day": "Braiins hashprice, USD/PH/day (API gives USD/TH/day x 1000)",
        "network_hashrate_ehs": "current network hashrate, EH/s",
        "avg_fees_per_block_btc": "average fees per block, BTC",
        "price_usd_per_btc": "BTC price, USD/BTC",
    },
}

FUEL_CODES: dict[str, str] = {
    "Wind": "WND",
    "Solar": "SUN",
    "Hydro": "WAT",
    "Gas": "NG",
    "Gas-CC": "NG",
    "Coal": "COL",
    "Nuclear": "NUC",
    "Biomass": "OTH",
    "Other": "OTH",
}
"""ERCOT fuel-mix names -> EIA fuel codes used by the emission factor table."""


class SourceError(TerminalError, ValueError):
    """A data file does not have the expected shape; names file, line and column."""

    def __init__(self, path: Path | str, message: str, line: int | None = None,
                 column: str | None = None) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.column = column


_LINE = "_line"


def _read_text(path: Path | str, separator: str = ",") -> pl.DataFrame:
    """Every field as text plus the 1-based file line of each row (header is line 1)."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(p, "file not found")
    try:
        frame = pl.read_csv(p, separator=separator, infer_schema=False, encoding="utf8",
                            truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise SourceError(p, f"cannot parse as delimited text: {exc}") from exc
    if frame.height == 0:
        raise SourceError(p, "no data rows")
    return frame.with_row_index(_LINE, offset=2)


def _require(frame: pl.DataFrame, columns: list[str], path: Path | str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceError(path, f"missing column(s) {missing}; header has {frame.columns}",
                          line=1)


def _first_bad(frame: pl.DataFrame, raw: str, parsed: pl.Series, path: Path | str,
               what: str) -> None:
    bad = frame.filter(parsed.is_null() & frame[raw].is_not_null())
    bad = bad if bad.height else frame.filter(frame[raw].is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise SourceError(path, f"expected {what}, got {row[raw]!r}", line=row[_LINE],
                          column=raw)


def _parse(frame: pl.DataFrame, column: str, dtype: pl.DataType, path: Path | str,
           thousands: bool = False) -> pl.Series:
    """Parse one text column, raising on the first value that does not parse (or is empty)."""
    text = frame[column].str.strip_chars()
    if thousands:
        text = text.str.replace_all(",", "", literal=True)
    parsed = text.cast(dtype, strict=False)
    _first_bad(frame, column, parsed, path, str(dtype))
    return parsed


def _parse_naive(frame: pl.DataFrame, column: str, fmt: str, path: Path | str) -> pl.Series:
    parsed = frame[column].str.strip_chars().str.strptime(pl.Datetime("us"), fmt, strict=False)
    _first_bad(frame, column, parsed, path, f"timestamp {fmt}")
    return parsed


def _localize(frame: pl.DataFrame, naive: str, second_pass: pl.Expr, path: Path | str,
              tz: str) -> pl.DataFrame:
    """Naive local column -> UTC, ``second_pass`` choosing the later of an ambiguous time."""
    ambiguous = pl.when(second_pass).then(pl.lit("latest")).otherwise(pl.lit("earliest"))
    try:
        return frame.with_columns(
            pl.col(naive).dt.replace_time_zone(tz, ambiguous=ambiguous, non_existent="raise")
            .dt.convert_time_zone("UTC")
        )
    except pl.exceptions.ComputeError as exc:
        raise SourceError(path, f"local time not valid in {tz}: {exc}") from exc


def _with_keys(frame: pl.DataFrame, utc: str, prefix: str, length_s: int) -> pl.DataFrame:
    return frame.with_columns(
        pl.col(utc).dt.epoch("s").alias(f"{prefix}_start_s"),
        pl.col(utc).alias(f"{prefix}_start_utc"),
        (pl.col(utc) + pl.duration(seconds=length_s)).alias(f"{prefix}_end_utc"),
    )


def _check_unique(frame: pl.DataFrame, keys: list[str], path: Path | str) -> None:
    dup = frame.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        row = dup.row(0, named=True)
        raise SourceError(path, f"duplicate key {({k: row[k] for k in keys})}",
                          line=row.get(_LINE))


# ---------------------------------------------------------------- ERCOT prices


def read_ercot_rtm_spp_15min(path: Path | str, tz: str = MARKET_TZ) -> pl.DataFrame:
    """ERCOT RTM 15-minute SPP wide CSV (``Time`` naive local start + one column per point).

    Returns long ``COLUMNS["prices_15min"]``. A local time seen twice (fall-back) is CDT
    the first time and CST the second.
    """
    raw = _read_text(path)
    _require(raw, ["Time"], path)
    points = [c for c in raw.columns if c not in ("Time", _LINE)]
    if not points:
        raise SourceError(path, "no settlement point columns after 'Time'", line=1)
    frame = raw.with_columns(_parse_naive(raw, "Time", "%Y-%m-%d %H:%M:%S", path).alias("t"))
    frame = frame.with_columns(*(_parse(raw, p, PRICE, path).alias(p) for p in points))
    frame = _localize(frame, "t", pl.col("t").cum_count().over("t") > 1, path, tz)
    frame = _with_keys(frame, "t", "interval", 900)
    _check_unique(frame, ["interval_start_s"], path)
    return (
        frame.unpivot(index=["interval_start_s", "interval_start_utc", "interval_end_utc"],
                      on=points, variable_name="settlement_point",
                      value_name="price_usd_per_mwh")
        .sort("settlement_point", "interval_start_s")
        .select(list(COLUMNS["prices_15min"]))
    )


def read_ercot_rt_spp_api(path: Path | str, load_zone_type: Literal["LZ", "LZEW"] = "LZ",
                          tz: str = MARKET_TZ) -> pl.DataFrame:
    """ERCOT native API RT SPP (np6-905-cd): one row per point, hour ending + interval 1-4.

    Each load zone appears twice, as ``LZ`` (load zone price) and ``LZEW`` (energy-weighted);
    this keeps ``load_zone_type`` (default ``LZ``, the type the 15-minute RTM file appears to
    carry) so a point has one price per interval. Returns ``COLUMNS["rt_spp_api"]``.
    """
    cols = ["DeliveryDate", "DeliveryHour", "DeliveryInterval", "SettlementPointName",
            "SettlementPointType", "SettlementPointPrice", "DSTFlag"]
    raw = _read_text(path)
    _require(raw, cols, path)
    other = "LZEW" if load_zone_type == "LZ" else "LZ"
    raw = raw.filter(pl.col("SettlementPointType").str.strip_chars() != other)
    day = _parse_naive(raw, "DeliveryDate", "%m/%d/%Y", path)
    hour = _parse(raw, "DeliveryHour", pl.Int64(), path)
    interval = _parse(raw, "DeliveryInterval", pl.Int64(), path)
    _check_range(raw, "DeliveryHour", hour, 1, 25, path)
    _check_range(raw, "DeliveryInterval", interval, 1, 4, path)
    dst = _parse_flag(raw, "DSTFlag", path)
    frame = raw.with_columns(
        (day + pl.duration(hours=pl.lit(hour) - 1, minutes=(pl.lit(interval) - 1) * 15)).alias("t"),
        dst.alias("second_pass"),
        pl.col("SettlementPointName").str.strip_chars().alias("settlement_point"),
        pl.col("SettlementPointType").str.strip_chars().alias("settlement_point_type"),
        _parse(raw, "SettlementPointPrice", PRICE, path).alias("price_usd_per_mwh"),
    )
    frame = _with_keys(_localize(frame, "t", pl.col("second_pass"), path, tz), "t", "interval",
                       900)
    _check_unique(frame, ["interval_start_s", "settlement_point"], path)
    return frame.select(list(COLUMNS["rt_spp_api"])).sort(
        "settlement_point", "interval_start_s")


def read_ercot_dam_spp_api(path: Path | str, tz: str = MARKET_TZ) -> pl.DataFrame:
    """ERCOT native API DAM SPP (np4-190-cd): hour ending ``HH:00``, price with a leading space.

    Returns ``COLUMNS["prices_hourly"]``.
    """
    cols = ["DeliveryDate", "HourEnding", "SettlementPoint", "SettlementPointPrice", "DSTFlag"]
    raw = _read_text(path)
    _require(raw, cols, path)
    day = _parse_naive(raw, "DeliveryDate", "%m/%d/%Y", path)
    he = raw["HourEnding"].str.strip_chars()
    ok = he.str.contains(r"^\d{1,2}:00$")
    if not ok.all():
        bad = raw.filter(~ok).row(0, named=True)
        raise SourceError(path, f"expected hour ending HH:00, got {bad['HourEnding']!r}",
                          line=bad[_LINE], column="HourEnding")
    hour = he.str.split(":").list.first().cast(pl.Int64)
    _check_range(raw, "HourEnding", hour, 1, 25, path)
    frame = raw.with_columns(
        (day + pl.duration(hours=pl.lit(hour) - 1)).alias("t"),
        _parse_flag(raw, "DSTFlag", path).alias("second_pass"),
        pl.col("SettlementPoint").str.strip_chars().alias("settlement_point"),
        _parse(raw, "SettlementPointPrice", PRICE, path).alias("price_usd_per_mwh"),
    )
    frame = _with_keys(_localize(frame, "t", pl.col("second_pass"), path, tz), "t", "hour", 3600)
    _check_unique(frame, ["hour_start_s", "settlement_point"], path)
    return frame.select(list(COLUMNS["prices_hourly"])).sort("settlement_point", "hour_start_s")


def read_ercot_dam_hourly(path: Path | str, settlement_point: str = "HB_HUBAVG") -> pl.DataFrame:
    """gridstatus DAM export: ``Datetime`` local start with offset, ``Price (USD/MWh)``.

    The offset makes DST unambiguous (the fall-back hour appears with -05:00 then -06:00).
    Returns ``COLUMNS["prices_hourly"]``.
    """
    raw = _read_text(path)
    _require(raw, ["Datetime", "Price (USD/MWh)"], path)
    t = raw["Datetime"].str.strip_chars().str.strptime(pl.Datetime("us", "UTC"),
                                                      "%Y-%m-%d %H:%M:%S%:z", strict=False)
    _first_bad(raw, "Datetime", t, path, "timestamp YYYY-MM-DD HH:MM:SS+HH:MM")
    frame = raw.with_columns(
        t.alias("t"),
        pl.lit(settlement_point).alias("settlement_point"),
        _parse(raw, "Price (USD/MWh)", PRICE, path).alias("price_usd_per_mwh"),
    )
    frame = _with_keys(frame, "t", "hour", 3600)
    _check_unique(frame, ["hour_start_s"], path)
    return frame.select(list(COLUMNS["prices_hourly"]))


def _parse_offset(raw: pl.DataFrame, column: str, path: Path | str) -> pl.Series:
    """ISO local time with its UTC offset (``2023-07-01T00:00:00-05:00``) -> UTC."""
    t = raw[column].str.strip_chars().str.strptime(pl.Datetime("us", "UTC"),
                                                  "%Y-%m-%dT%H:%M:%S%:z", strict=False)
    _first_bad(raw, column, t, path, "timestamp YYYY-MM-DDTHH:MM:SS+HH:MM")
    return t


def _long_prices(frame: pl.DataFrame, points: list[str], hourly: bool) -> pl.DataFrame:
    shape = "prices_hourly" if hourly else "prices_15min"
    index = list(COLUMNS[shape])[:3]
    return (frame.unpivot(index=index, on=points, variable_name="settlement_point",
                          value_name="price_usd_per_mwh")
            .sort("settlement_point", index[0]).select(list(COLUMNS[shape])))


def read_ercot_lz_wide(path: Path | str) -> pl.DataFrame:
    """ERCOT NP6-785-ER / NP4-180-ER extracts by load zone (wattgap): ``interval_start_ct``
    (15-minute real-time) or ``hour_start_ct`` (day-ahead), local start with its offset, then
    one column per settlement point.

    Returns ``COLUMNS["prices_15min"]`` or ``COLUMNS["prices_hourly"]``.
    """
    raw = _read_text(path)
    key = next((k for k in ("interval_start_ct", "hour_start_ct") if k in raw.columns), None)
    if key is None:
        raise SourceError(path, f"missing column 'interval_start_ct' or 'hour_start_ct'; "
                          f"header has {raw.columns}", line=1)
    hourly = key == "hour_start_ct"
    points = [c for c in raw.columns if c not in (key, _LINE)]
    if not points:
        raise SourceError(path, f"no settlement point columns after {key!r}", line=1)
    frame = raw.with_columns(_parse_offset(raw, key, path).alias("t"),
                             *(_parse(raw, p, PRICE, path).alias(p) for p in points))
    prefix = "hour" if hourly else "interval"
    frame = _with_keys(frame, "t", prefix, 3600 if hourly else 900)
    _check_unique(frame, [f"{prefix}_start_s"], path)
    return _long_prices(frame, points, hourly)


_GRIDSTATUS = {  # layout -> (start, end, point, price, market) columns
    "long": ("interval_start_utc", "interval_end_utc", "location", "price", "market"),
    "raw": ("Interval Start", "Interval End", "Location", "SPP", "Market"),
}


def read_gridstatus_spp(path: Path | str) -> pl.DataFrame:
    """gridstatus SPP exports, long (``interval_start_utc, interval_end_utc, ..., location,
    price``) or as fetched (``Time, Interval Start, Interval End, Location, ..., SPP``, local
    with offset, the only layout that shows a DST day's 23 or 25 hours).

    Returns ``COLUMNS["prices_15min"]`` (interval keys, whatever the length: the end is the
    file's own) plus ``market`` (gridstatus's name, e.g. ``DAY_AHEAD_HOURLY``).
    """
    raw = _read_text(path)
    layout = "long" if "interval_start_utc" in raw.columns else "raw"
    start, end, point, price, market = _GRIDSTATUS[layout]
    _require(raw, [start, end, point, price, market], path)
    frame = raw.with_columns(
        _parse_offset(raw, start, path).alias("interval_start_utc"),
        _parse_offset(raw, end, path).alias("interval_end_utc"),
        pl.col(point).str.strip_chars().alias("settlement_point"),
        _parse(raw, price, PRICE, path).alias("price_usd_per_mwh"),
        pl.col(market).str.strip_chars().alias("market"),
    ).with_columns(pl.col("interval_start_utc").dt.epoch("s").alias("interval_start_s"))
    backwards = frame.filter(pl.col("interval_end_utc") <= pl.col("interval_start_utc"))
    if backwards.height:
        raise SourceError(path, "interval end is not after its start",
                          line=backwards.row(0, named=True)[_LINE], column=end)
    _check_unique(frame, ["interval_start_s", "settlement_point"], path)
    return frame.select(*COLUMNS["prices_15min"], "market").sort(
        "settlement_point", "interval_start_s")


def read_hub_rtm_dam_15min(path: Path | str, tz: str = MARKET_TZ
                           ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """A backtest series (MPC-BESS ``interval_analysis``): unnamed naive local 15-minute
    index, ``<POINT>_RTM`` and ``<POINT>_DAM`` (the hour's day-ahead price repeated 4 times),
    other columns ignored (simulation outputs and weather).

    The series was resampled to 96 rows on every day, DST days too: a spring-forward local
    time that does not exist is dropped (its count is returned, 4 a spring day: nothing real
    is lost), and the fall-back hour appears once (read as CDT). Returns
    ``(COLUMNS["prices_15min"] real-time, COLUMNS["prices_hourly"] day-ahead, dropped)``.
    """
    raw = _read_text(path)
    index = next(c for c in raw.columns if c != _LINE)
    rtm = [c for c in raw.columns if c.endswith("_RTM")]
    dam = [c for c in raw.columns if c.endswith("_DAM")]
    if not rtm and not dam:
        raise SourceError(path, f"no <POINT>_RTM or <POINT>_DAM columns; header has "
                          f"{raw.columns}", line=1)
    naive = _parse_naive(raw, index, "%Y-%m-%d %H:%M:%S", path)
    frame = raw.with_columns(naive.alias("t"),
                             *(_parse(raw, c, PRICE, path).alias(c) for c in rtm + dam))
    frame = frame.with_columns(pl.col("t").dt.replace_time_zone(
        tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC"))
    dropped = frame["t"].null_count()
    frame = _with_keys(frame.filter(pl.col("t").is_not_null()), "t", "interval", 900)
    _check_unique(frame, ["interval_start_s"], path)
    rt = _long_prices(frame.rename({c: c.removesuffix("_RTM") for c in rtm}),
                      [c.removesuffix("_RTM") for c in rtm], hourly=False)
    hours = (frame.filter(pl.col("interval_start_utc").dt.minute() == 0)
             .rename({"interval_start_s": "hour_start_s", "interval_start_utc": "hour_start_utc"})
             .with_columns((pl.col("hour_start_utc") + pl.duration(hours=1)).alias("hour_end_utc"))
             .rename({c: c.removesuffix("_DAM") for c in dam}))
    da = _long_prices(hours, [c.removesuffix("_DAM") for c in dam], hourly=True)
    return rt, da, dropped


def read_mpcbess_dam_hourly(path: Path | str, tz: str = MARKET_TZ) -> pl.DataFrame:
    """MPC-BESS hourly table: ``key`` = ``MM/DD/YYYY HE`` and ``<POINT>_DAM`` day-ahead prices
    (its ``_RTM`` columns are hourly means of 15-minute prices, not settlement prices, and its
    AS columns are read by ``streams.collectors.grid_feeds.read_as_mcpc``).

    Hour ending has no repeated-hour flag here: a fall-back day would fail as a duplicate.
    Returns ``COLUMNS["prices_hourly"]``.
    """
    raw = _read_text(path)
    _require(raw, ["key"], path)
    dam = [c for c in raw.columns if c.endswith("_DAM")]
    if not dam:
        raise SourceError(path, "no <POINT>_DAM columns", line=1)
    parts = raw["key"].str.strip_chars().str.split(" ")
    day = parts.list.first().str.strptime(pl.Datetime("us"), "%m/%d/%Y", strict=False)
    he = parts.list.get(1, null_on_oob=True).cast(pl.Int64, strict=False)
    _first_bad(raw, "key", day, path, "MM/DD/YYYY HE")
    _first_bad(raw, "key", he, path, "MM/DD/YYYY HE")
    _check_range(raw, "key", he, 1, 24, path)
    frame = raw.with_columns((day + pl.duration(hours=pl.lit(he) - 1)).alias("t"),
                             *(_parse(raw, c, PRICE, path).alias(c.removesuffix("_DAM"))
                               for c in dam))
    frame = _with_keys(_localize(frame, "t", pl.lit(False), path, tz), "t", "hour", 3600)
    _check_unique(frame, ["hour_start_s"], path)
    return _long_prices(frame, [c.removesuffix("_DAM") for c in dam], hourly=True)


def read_ercot_sced_lmp(path: Path | str, tz: str = MARKET_TZ) -> pl.DataFrame:
    """ERCOT NP6-788-CD SCED LMPs: ``SCEDTimestamp`` (execution time, CPT, not an interval
    boundary), ``RepeatedHourFlag``, ``SettlementPoint``, ``LMP`` (right-aligned).

    Each run prices the next 5 minutes (Protocols §6.3.2: SCED about every five minutes), so
    the interval is ``[timestamp, timestamp + 300 s)``. Returns ``COLUMNS["prices_15min"]``.
    """
    raw = _read_text(path)
    _require(raw, ["SCEDTimestamp", "RepeatedHourFlag", "SettlementPoint", "LMP"], path)
    frame = raw.with_columns(
        _parse_naive(raw, "SCEDTimestamp", "%m/%d/%Y %H:%M:%S", path).alias("t"),
        _parse_flag(raw, "RepeatedHourFlag", path).alias("second_pass"),
        pl.col("SettlementPoint").str.strip_chars().alias("settlement_point"),
        _parse(raw, "LMP", PRICE, path).alias("price_usd_per_mwh"),
    )
    frame = _with_keys(_localize(frame, "t", pl.col("second_pass"), path, tz), "t", "interval",
                       300)
    _check_unique(frame, ["interval_start_s", "settlement_point"], path)
    return frame.select(list(COLUMNS["prices_15min"])).sort("settlement_point",
                                                           "interval_start_s")


def _parse_flag(raw: pl.DataFrame, column: str, path: Path | str) -> pl.Series:
    text = raw[column].str.strip_chars()
    ok = text.is_in(["Y", "N"])
    if not ok.all():
        bad = raw.filter(~ok).row(0, named=True)
        raise SourceError(path, f"expected Y or N, got {bad[column]!r}", line=bad[_LINE],
                          column=column)
    return text == "Y"


def _check_range(raw: pl.DataFrame, column: str, values: pl.Series, lo: int, hi: int,
                 path: Path | str) -> None:
    ok = values.is_between(lo, hi)
    if not ok.all():
        bad = raw.filter(~ok).row(0, named=True)
        raise SourceError(path, f"expected {lo}..{hi}, got {bad[column]!r}", line=bad[_LINE],
                          column=column)


# ---------------------------------------------------------------- carbon and fuel mix


_EMAPS = {
    "Datetime (UTC)": "t",
    "Zone Id": "zone_id",
    "Carbon Intensity gCO\u2082eq/kWh (direct)": "ci_direct_g_per_kwh",
    "Carbon Intensity gCO\u2082eq/kWh (LCA)": "ci_lca_g_per_kwh",
    "Low Carbon Percentage": "low_carbon_pct",
    "Renewable Percentage": "renewable_pct",
    "Data Estimated": "estimated",
}


def read_emaps_carbon_hourly(path: Path | str) -> pl.DataFrame:
    """Electricity Maps hourly export (UTF-8 header with a subscript 2).

    Returns ``COLUMNS["carbon_intensity_hourly"]``.
    """
    raw = _read_text(path)
    _require(raw, list(_EMAPS), path)
    frame = raw.with_columns(
        _parse_naive(raw, "Datetime (UTC)", "%Y-%m-%d %H:%M:%S", path)
        .dt.replace_time_zone("UTC").alias("t"),
        *(_parse(raw, c, pl.Float64(), path).alias(name) for c, name in _EMAPS.items()
          if name.endswith(("_kwh", "_pct"))),
        pl.col("Zone Id").str.strip_chars().alias("zone_id"),
        (pl.col("Data Estimated").str.strip_chars().str.to_lowercase() == "true")
        .alias("estimated"),
    )
    frame = _with_keys(frame, "t", "hour", 3600)
    _check_unique(frame, ["hour_start_s", "zone_id"], path)
    return frame.select(list(COLUMNS["carbon_intensity_hourly"]))


_EIA_FUELS = ["WND", "SUN", "WAT", "OIL", "NG", "COL", "NUC", "OTH"]


def _read_eia(path: Path | str) -> pl.DataFrame:
    raw = _read_text(path)
    _require(raw, ["timestamp", *_EIA_FUELS, "avg_CI"], path)
    t = raw["timestamp"].str.strip_chars().str.strptime(pl.Datetime("us", "UTC"),
                                                       "%Y-%m-%d %H:%M:%S%:z", strict=False)
    _first_bad(raw, "timestamp", t, path, "timestamp YYYY-MM-DD HH:MM:SS+00:00")
    frame = raw.with_columns(t.alias("t"),
                             *(_parse(raw, c, pl.Float64(), path).alias(c)
                               for c in [*_EIA_FUELS, "avg_CI"]))
    frame = _with_keys(frame, "t", "hour", 3600)
    _check_unique(frame, ["hour_start_s"], path)
    return frame


def read_eia_fuel_mix_hourly(path: Path | str) -> pl.DataFrame:
    """EIA-930-derived ERCO hourly mix (``timestamp`` UTC, WND…OTH in MWh, ``avg_CI``).

    Returns long ``COLUMNS["fuel_mix"]`` with 1-hour intervals.
    """
    frame = _read_eia(path).rename({"hour_start_s": "interval_start_s",
                                    "hour_start_utc": "interval_start_utc",
                                    "hour_end_utc": "interval_end_utc"})
    return (
        frame.unpivot(index=["interval_start_s", "interval_start_utc", "interval_end_utc"],
                      on=_EIA_FUELS, variable_name="fuel", value_name="generation_mwh")
        .sort("interval_start_s", "fuel")
        .select(list(COLUMNS["fuel_mix"]))
    )


def read_eia_avg_ci_hourly(path: Path | str) -> pl.DataFrame:
    """The ``avg_CI`` column of the EIA-derived file: ``COLUMNS["avg_ci_hourly"]``."""
    return _read_eia(path).select(
        "hour_start_s", "hour_start_utc", pl.col("avg_CI").alias("avg_ci_g_per_kwh"))


def read_ercot_fuel_mix_15min(path: Path | str, tz: str = MARKET_TZ) -> pl.DataFrame:
    """ERCOT Fuel Mix Report TSV: wide, interval-end labels, thousands separators, DST columns.

    Returns long ``COLUMNS["fuel_mix"]`` with 15-minute intervals; ERCOT fuel names are
    mapped to codes by ``FUEL_CODES`` and summed (Gas + Gas-CC -> NG, Biomass + Other -> OTH).
    Each (day, fuel) row must give exactly the day's 92/96/100 intervals.
    """
    raw = _read_text(path, separator="\t")
    _require(raw, ["Date", "Fuel", "Total"], path)
    labels = [c for c in raw.columns if c not in ("Date", "Fuel", "Settlement Type", "Total",
                                                  _LINE)]
    offsets: dict[str, tuple[int, bool]] = {}
    for label in labels:
        repeated = label.endswith("(DST)")
        hhmm = label.replace("(DST)", "").strip()
        try:
            h, m = (int(x) for x in hhmm.split(":"))
        except ValueError as exc:
            raise SourceError(path, f"interval column label {label!r} is not H:MM", line=1,
                              column=label) from exc
        end_min = 1440 if (h, m) == (0, 0) else h * 60 + m
        offsets[label] = (end_min - 15, repeated)
    unknown = raw.filter(~pl.col("Fuel").str.strip_chars().is_in(list(FUEL_CODES)))
    if unknown.height:
        row = unknown.row(0, named=True)
        raise SourceError(path, f"unknown fuel {row['Fuel']!r}; known {sorted(FUEL_CODES)}",
                          line=row[_LINE], column="Fuel")
    day = _parse_naive(raw, "Date", "%m/%d/%Y", path)
    base = raw.with_columns(day.alias("day"))
    long = base.unpivot(index=[_LINE, "day", "Fuel"], on=labels, variable_name="label",
                        value_name="text").filter(pl.col("text").str.strip_chars() != "")
    bad_num = long.with_columns(
        pl.col("text").str.strip_chars().str.replace_all(",", "", literal=True)
        .cast(pl.Float64, strict=False).alias("generation_mwh"))
    bad = bad_num.filter(pl.col("generation_mwh").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise SourceError(path, f"expected a number, got {row['text']!r}", line=row[_LINE],
                          column=row["label"])
    off = pl.DataFrame({"label": list(offsets),
                        "start_min": [v[0] for v in offsets.values()],
                        "second_pass": [v[1] for v in offsets.values()]})
    frame = bad_num.join(off, on="label").with_columns(
        (pl.col("day") + pl.duration(minutes=pl.col("start_min"))).alias("t"))
    frame = _localize(frame, "t", pl.col("second_pass"), path, tz)
    frame = _with_keys(frame, "t", "interval", 900)
    _check_interval_counts(frame, path, tz)
    return (
        frame.with_columns(pl.col("Fuel").str.strip_chars().replace_strict(FUEL_CODES)
                           .alias("fuel"))
        .group_by("interval_start_s", "interval_start_utc", "interval_end_utc", "fuel")
        .agg(pl.col("generation_mwh").sum())
        .sort("interval_start_s", "fuel")
        .select(list(COLUMNS["fuel_mix"]))
    )


def _check_interval_counts(frame: pl.DataFrame, path: Path | str, tz: str) -> None:
    counts = frame.group_by(_LINE, "day").agg(pl.len().alias("n"),
                                              pl.col("interval_start_s").n_unique().alias("u"))
    expected: dict[Any, int] = {}
    for row in counts.iter_rows(named=True):
        d = row["day"].date()
        if d not in expected:
            expected[d] = settlement_intervals(d, tz).height
        if row["n"] != expected[d] or row["u"] != row["n"]:
            raise SourceError(path, f"{d} has {row['n']} interval values ({row['u']} distinct),"
                              f" expected {expected[d]}", line=row[_LINE])


# ---------------------------------------------------------------- Bitcoin network


_COINMETRICS = {
    "BlkCnt": "block_count",
    "DiffMean": "difficulty",
    "HashRate": "hashrate_ths",
    "FeeTotNtv": "fees_btc",
    "IssTotNtv": "issuance_btc",
    "PriceUSD": "price_usd_per_btc",
}
COINMETRICS_REQUIRED = ("time", "HashRate", "IssTotNtv", "PriceUSD")
"""What hashprice needs: (issuance + fees) x price / hashrate. Fees may be absent (a note
says so; hashprice then counts the subsidy only), and block count and difficulty only
cross-check. Coin Metrics' community CSVs carry a varying subset of metrics."""


def read_coinmetrics_btc_daily(path: Path | str,
                               notes: list[str] | None = None) -> pl.DataFrame:
    """Coin Metrics daily BTC network data: ``COLUMNS["btc_network_daily"]``.

    A missing optional column (``COINMETRICS_REQUIRED`` lists the others) becomes null and a
    note naming the file and column is appended to ``notes``; a missing required one raises
    :class:`SourceError`. An empty cell in a present column is null too (Coin Metrics leaves
    a metric blank before it exists).
    """
    raw = _read_text(path)
    _require(raw, list(COINMETRICS_REQUIRED), path)
    missing = [c for c in _COINMETRICS if c not in raw.columns]
    for c in missing:
        if notes is not None:
            notes.append(f"{path}: no column {c!r}; {_COINMETRICS[c]} is null")
    day = raw["time"].str.strip_chars().str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    _first_bad(raw, "time", day, path, "date YYYY-MM-DD")
    present = {c: n for c, n in _COINMETRICS.items() if c in raw.columns}
    frame = raw.with_columns(day.alias("day"),
                             *(_parse_optional(raw, c, path).alias(n)
                               for c, n in present.items()),
                             *(pl.lit(None, pl.Float64).alias(_COINMETRICS[c])
                               for c in missing))
    frame = frame.with_columns(
        pl.col("day").cast(pl.Datetime("us", "UTC")).dt.epoch("s").alias("start_s"),
        pl.col("block_count").cast(pl.Int64),
    )
    _check_unique(frame, ["day"], path)
    return frame.select(list(COLUMNS["btc_network_daily"]))


def _parse_optional(raw: pl.DataFrame, column: str, path: Path | str) -> pl.Series:
    """A float column whose empty cells are null; anything else that does not parse raises."""
    text = raw[column].str.strip_chars()
    parsed = text.cast(pl.Float64, strict=False)
    bad = raw.filter(parsed.is_null() & text.is_not_null() & (text != ""))
    if bad.height:
        row = bad.row(0, named=True)
        raise SourceError(path, f"expected a number, got {row[column]!r}", line=row[_LINE],
                          column=column)
    return parsed


def _json_body(path: Path | str) -> tuple[dict[str, Any], str]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf8"))
        return doc["response"]["body"], doc["captured_at"]
    except FileNotFoundError as exc:
        raise SourceError(path, "file not found") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from exc
    except (KeyError, TypeError) as exc:
        raise SourceError(path, f"missing key {exc} (expected response.body, captured_at)") \
            from exc


def read_braiins_insights(hashrate_path: Path | str, price_path: Path | str) -> pl.DataFrame:
    """Braiins Insights hashrate-stats + price-stats snapshots: one row,
    ``COLUMNS["btc_snapshot"]``."""
    hr, _ = _json_body(hashrate_path)
    px, captured = _json_body(price_path)
    try:
        row = {
            "captured_at_utc": captured,
            "hashprice_usd_per_ph_day": float(hr["hash_price"]) * 1000.0,
            "network_hashrate_ehs": float(hr["current_hashrate"]),
            "avg_fees_per_block_btc": float(hr["avg_fees_per_block"]),
            "price_usd_per_btc": float(px["price"]),
        }
    except KeyError as exc:
        raise SourceError(hashrate_path if str(exc).strip("'") != "price" else price_path,
                          f"missing key {exc} in response.body") from exc
    return pl.DataFrame([row]).with_columns(
        pl.col("captured_at_utc").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ"))
