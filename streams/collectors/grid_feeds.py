"""ERCOT public report files -> grid messages (prices, fuel mix, carbon, ancillary prices).

The file readers themselves live in ``transforms.sources`` (shared with the marts); this
module turns their tidy frames into contract messages, each wrapped in a ``Record`` with
the event time replay orders it by (the interval or hour *start*), shifted by ``shift_s``
so a recorded day can be replayed as another day.

Ancillary-service clearing prices (np4-188-cd DAM MCPC, np6-331-cd RT MCPC) have no topic
contract yet: ``read_as_mcpc`` parses them into ``AncillaryPrice`` rows (USD per MW per
hour, not per MWh) for whoever adds that contract; they are not published.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec
import polars as pl

from schemas.grid import CarbonIntensity, FuelMix, PriceSignal
from streams.errors import TerminalError
from streams.replay.records import Record
from transforms import sources
from transforms.calendar import MARKET_TZ

PriceKind = Literal["rt", "da", "sced"]
PRICE_FORMATS: dict[str, PriceKind] = {
    "ercot_rtm_spp_15min": "rt",
    "ercot_rt_spp_api": "rt",
    "ercot_dam_spp_api": "da",
    "ercot_dam_hourly": "da",
    "ercot_lz_rt_wide": "rt",
    "ercot_lz_dam_wide": "da",
    "gridstatus_dam_spp": "da",
    "mpcbess_dam_hourly": "da",
    "ercot_sced_lmp": "sced",
}
"""Formats of one price kind; ``hub_rtm_dam_15min`` carries both (``read_hub_prices``)."""

_ENC = msgspec.json.Encoder()


class FeedError(TerminalError, ValueError):
    """A grid file cannot be turned into messages (names file and what is missing)."""


def read_prices(path: Path | str, fmt: str, settlement_point: str | None = None) -> pl.DataFrame:
    """Prices in any supported format as ``interval_start_s, interval_end_s, settlement_point,
    price_usd_per_mwh`` (Decimal), sorted by time then point. The interval's end is the
    reader's own (a DST day's hour in a gridstatus file, 5 minutes for SCED)."""
    if fmt == "ercot_rtm_spp_15min":
        frame = sources.read_ercot_rtm_spp_15min(path)
    elif fmt == "ercot_rt_spp_api":
        frame = sources.read_ercot_rt_spp_api(path)
    elif fmt == "ercot_dam_spp_api":
        frame = sources.read_ercot_dam_spp_api(path)
    elif fmt == "ercot_dam_hourly":
        frame = sources.read_ercot_dam_hourly(path, settlement_point or "HB_HUBAVG")
    elif fmt in ("ercot_lz_rt_wide", "ercot_lz_dam_wide"):
        frame = sources.read_ercot_lz_wide(path)
    elif fmt == "gridstatus_dam_spp":
        frame = sources.read_gridstatus_spp(path)
        other = sorted(set(frame["market"].unique().to_list()) - {"DAY_AHEAD_HOURLY"})
        if other:
            raise FeedError(f"{path}: market {other} is not day-ahead; only DAY_AHEAD_HOURLY "
                            "gridstatus files are read")
    elif fmt == "mpcbess_dam_hourly":
        frame = sources.read_mpcbess_dam_hourly(path)
    elif fmt == "ercot_sced_lmp":
        frame = sources.read_ercot_sced_lmp(path)
    else:
        raise FeedError(f"{path}: unknown price format {fmt!r}; known: {sorted(PRICE_FORMATS)}")
    return _interval_prices(frame)


def _interval_prices(frame: pl.DataFrame) -> pl.DataFrame:
    if "hour_start_s" in frame.columns:
        frame = frame.rename(
            {"hour_start_s": "interval_start_s", "hour_end_utc": "interval_end_utc"}
        )
    return frame.with_columns(
        pl.col("interval_end_utc").dt.epoch("s").alias("interval_end_s")
    ).select(
        "interval_start_s", "interval_end_s", "settlement_point", "price_usd_per_mwh"
    ).sort("interval_start_s", "settlement_point")


def read_hub_prices(path: Path | str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A backtest series with a hub's real-time and day-ahead prices (``hub_rtm_dam_15min``):
    ``(rt, da)`` in ``read_prices``'s shape."""
    rt, da, _ = sources.read_hub_rtm_dam_15min(path)
    return _interval_prices(rt), _interval_prices(da)


def price_records(
    frame: pl.DataFrame,
    kind: PriceKind,
    points: Iterable[str] | None = None,
    shift_s: float = 0.0,
    market: str = "ERCOT",
) -> Iterator[Record]:
    """One PriceSignal per (interval, point), keyed by settlement point."""
    if points is not None:
        wanted = list(points)
        have = set(frame["settlement_point"].unique().to_list())
        missing = [p for p in wanted if p not in have]
        if missing:
            raise FeedError(
                f"settlement point(s) {missing} not in the file; it has {sorted(have)[:20]}"
            )
        frame = frame.filter(pl.col("settlement_point").is_in(wanted))
    for start, end, point, price in frame.iter_rows():
        msg = PriceSignal(
            market=market,
            settlement_point=point,
            kind=kind,
            interval_start_s=float(start) + shift_s,
            interval_end_s=float(end) + shift_s,
            price_usd_per_mwh=float(price),
        )
        yield Record(msg.interval_start_s, "grid.prices.v1", point.encode(), _ENC.encode(msg))


def fuel_mix_records(
    frame: pl.DataFrame, region: str = "ERCOT", shift_s: float = 0.0
) -> Iterator[Record]:
    """Long fuel-mix frame (``COLUMNS["fuel_mix"]``) -> one FuelMix per interval.

    The files give energy per interval (MWh); the contract carries average MW, so each value
    is divided by the interval length in hours. Fuel keys are the EIA codes of
    ``transforms.sources.FUEL_CODES`` (NG, WND, SUN, ...), the names the carbon factors use.
    """
    grouped = (
        frame.with_columns(
            ((pl.col("interval_end_utc") - pl.col("interval_start_utc")).dt.total_seconds()).alias(
                "length_s"
            )
        )
        .group_by("interval_start_s", "length_s", maintain_order=True)
        .agg(pl.col("fuel"), pl.col("generation_mwh"))
        .sort("interval_start_s")
    )
    for start, length_s, fuels, mwh in grouped.iter_rows():
        hours = length_s / 3600.0
        msg = FuelMix(
            region=region,
            interval_start_s=float(start) + shift_s,
            interval_end_s=float(start) + length_s + shift_s,
            generation_mw={f: m / hours for f, m in zip(fuels, mwh, strict=True)},
        )
        yield Record(msg.interval_start_s, "grid.fuelmix.v1", region.encode(), _ENC.encode(msg))


def read_carbon(path: Path | str, fmt: str) -> pl.DataFrame:
    """Hourly intensity as ``hour_start_s, intensity_g_per_kwh, source`` sorted by hour.

    ``emaps_hourly`` uses the life-cycle (LCA) column, the contract's ``average`` kind;
    ``eia_hourly`` uses the file's ``avg_CI``.
    """
    if fmt == "emaps_hourly":
        f = sources.read_emaps_carbon_hourly(path)
        return f.select(
            "hour_start_s",
            pl.col("ci_lca_g_per_kwh").alias("intensity_g_per_kwh"),
            pl.lit("electricitymaps-lca").alias("source"),
        ).sort("hour_start_s")
    if fmt == "eia_hourly":
        f = sources.read_eia_avg_ci_hourly(path)
        return f.select(
            "hour_start_s",
            pl.col("avg_ci_g_per_kwh").alias("intensity_g_per_kwh"),
            pl.lit("eia930-avg-ci").alias("source"),
        ).sort("hour_start_s")
    raise FeedError(f"{path}: unknown carbon format {fmt!r}; known: emaps_hourly, eia_hourly")


def carbon_records(
    frame: pl.DataFrame, region: str = "ERCOT", shift_s: float = 0.0
) -> Iterator[Record]:
    for hour, intensity, source in frame.iter_rows():
        msg = CarbonIntensity(
            region=region,
            kind="average",
            hour_start_s=float(hour) + shift_s,
            intensity_g_per_kwh=float(intensity),
            source=source,
        )
        yield Record(msg.hour_start_s, "grid.carbon.v1", region.encode(), _ENC.encode(msg))


def read_fuel_mix(path: Path | str, fmt: str) -> pl.DataFrame:
    if fmt == "ercot_fuel_mix_15min":
        return sources.read_ercot_fuel_mix_15min(path)
    if fmt == "eia_hourly":
        return sources.read_eia_fuel_mix_hourly(path)
    raise FeedError(
        f"{path}: unknown fuel-mix format {fmt!r}; known: ercot_fuel_mix_15min, eia_hourly"
    )


# ---------------------------------------------------------------- ancillary prices


@dataclass(frozen=True, slots=True)
class AncillaryPrice:
    market: Literal["da", "rt"]
    service: str
    """ERCOT AS type: RRS, NSPIN, REGUP, REGDN, ECRS."""
    interval_start_s: float
    interval_end_s: float
    mcpc_usd_per_mw_h: Decimal
    """Market clearing price for capacity, USD per MW per hour (not per MWh of energy)."""


def _local_start(day: str, hour_ending: int, minute: int, repeated: bool, where: str) -> float:
    """ERCOT hour-ending + DST flag -> UTC epoch seconds of the interval start."""
    try:
        d = datetime.strptime(day.strip(), "%m/%d/%Y")
    except ValueError as exc:
        raise FeedError(f"{where}: date {day!r} is not MM/DD/YYYY") from exc
    naive = d + timedelta(hours=hour_ending - 1, minutes=minute)
    local = naive.replace(tzinfo=ZoneInfo(MARKET_TZ), fold=1 if repeated else 0)
    return local.timestamp()


AS_SERVICES = {"REG_UP": "REGUP", "REG_DOWN": "REGDN", "NONSPIN": "NSPIN"}
"""gridstatus product names -> ERCOT's AS types (RRS and ECRS are the same in both)."""


def read_as_mcpc(path: Path | str) -> list[AncillaryPrice]:
    """AS clearing prices in any of the layouts seen: ERCOT np4-188-cd (DAM, hourly) or
    np6-331-cd (RT, 15-minute); gridstatus long (``interval_start_utc, ..., product, price``)
    or as fetched (``Interval Start, Interval End, REGDN, REGUP, RRS, NSPIN, ECRS``, an empty
    cell where a service did not exist yet, e.g. ECRS before 2023-06-10: skipped); or the
    MPC-BESS hourly table (``key`` + the same service columns)."""
    p = Path(path)
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    if not rows:
        raise FeedError(f"{p}: no rows")
    if "interval_start_utc" in header or "Interval Start" in header or "key" in header:
        return _as_gridstatus(p, header, rows)
    return _as_ercot_api(p, rows)


def _as_ercot_api(p: Path, rows: list[dict[str, str]]) -> list[AncillaryPrice]:
    out: list[AncillaryPrice] = []
    for n, r in enumerate(rows, start=2):
        where = f"{p}, line {n}"
        try:
            price = Decimal(r["MCPC"].strip())
            if "HourEnding" in r:
                he = int(r["HourEnding"].split(":")[0])
                start = _local_start(r["DeliveryDate"], he, 0, r.get("DSTFlag", "N") == "Y", where)
                out.append(
                    AncillaryPrice("da", r["AncillaryType"].strip(), start, start + 3600, price)
                )
            else:
                he, k = int(r["DeliveryHour"]), int(r["DeliveryInterval"])
                start = _local_start(
                    r["DeliveryDate"],
                    he,
                    (k - 1) * 15,
                    r.get("RepeatedHourFlag", "N") == "Y",
                    where,
                )
                out.append(AncillaryPrice("rt", r["ASType"].strip(), start, start + 900, price))
        except KeyError as exc:
            raise FeedError(
                f"{where}: missing column {exc}; not an np4-188-cd/np6-331-cd file"
            ) from exc
        except (ValueError, InvalidOperation) as exc:
            raise FeedError(f"{where}: bad value: {exc}") from exc
    return out


_AS_WIDE = ("REGDN", "REGUP", "RRS", "NSPIN", "ECRS")


def _iso_s(text: str, where: str) -> float:
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError as exc:
        raise FeedError(f"{where}: {text!r} is not an ISO time with offset") from exc


def _as_gridstatus(p: Path, header: list[str], rows: list[dict[str, str]]) -> list[AncillaryPrice]:
    out: list[AncillaryPrice] = []
    market: Literal["da", "rt"]
    long = "interval_start_utc" in header
    services = [c for c in header if c in _AS_WIDE]
    if not long and not services:
        raise FeedError(f"{p}: no AS service columns {list(_AS_WIDE)}; header has {header}")
    for n, r in enumerate(rows, start=2):
        where = f"{p}, line {n}"
        try:
            if long:
                start = _iso_s(r["interval_start_utc"], where)
                end = _iso_s(r["interval_end_utc"], where)
                market = "rt" if "RT" in r.get("market", "").upper() else "da"
                product = r["product"].strip()
                prices = {AS_SERVICES.get(product, product): r["price"]}
            else:
                if "key" in r:
                    day, he = r["key"].split()
                    start = _local_start(day, int(he), 0, False, where)
                    end = start + 3600
                else:
                    start = _iso_s(r["Interval Start"], where)
                    end = _iso_s(r["Interval End"], where)
                market = "da"
                prices = {s: r[s] for s in services}
            for service, text in prices.items():
                if text is None or not text.strip():
                    continue  # the service did not exist then (ECRS before 2023-06-10)
                out.append(AncillaryPrice(market, service, start, end, Decimal(text.strip())))
        except KeyError as exc:
            raise FeedError(f"{where}: missing column {exc}") from exc
        except (ValueError, InvalidOperation) as exc:
            raise FeedError(f"{where}: bad value: {exc}") from exc
    return out
