"""ERCOT files -> grid messages. Expected values are read from the raw files here (csv
module) and times written out by hand from ERCOT's conventions (CDT = UTC-5)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import msgspec
import pytest

from schemas.grid import FuelMix, PriceSignal
from streams.collectors.grid_feeds import (
    FeedError,
    fuel_mix_records,
    price_records,
    read_as_mcpc,
    read_fuel_mix,
    read_prices,
)
from transforms.sources import SHARED_DATA

DATA = SHARED_DATA
RTM = DATA / "ercot_rtm_spp_15min/ERCOT_RTM_SPP_hubs_loadzones_15min_2025-07-01_to_2025-07-03.csv"
API = DATA / "ercot_public_api_format_samples"
FUEL = DATA / "ercot_fuel_mix_15min/IntGenByFuel202107.tsv"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def test_rtm_day_at_lz_west() -> None:
    raw = [r for r in csv.DictReader(RTM.open()) if r["Time"].startswith("2025-07-01")]
    frame = read_prices(RTM, "ercot_rtm_spp_15min")
    recs = [r for r in price_records(frame, "rt", ["LZ_WEST"]) if r.ts_s < utc(2025, 7, 2, 5)]
    msgs = [msgspec.json.decode(r.value, type=PriceSignal) for r in recs]
    day = [m for m in msgs if m.interval_start_s >= utc(2025, 7, 1, 5)]
    assert len(day) == 96  # local 2025-07-01 00:00 CDT is 05:00Z; a market day is 96 intervals
    assert [m.price_usd_per_mwh for m in day] == [float(r["LZ_WEST"]) for r in raw]
    first = msgs[0]
    assert first.interval_start_s == utc(2025, 7, 1, 5)  # 00:00 CDT
    assert first.interval_end_s - first.interval_start_s == 900
    assert first.price_usd_per_mwh == float(raw[0]["LZ_WEST"])
    assert (first.market, first.settlement_point, first.kind) == ("ERCOT", "LZ_WEST", "rt")
    assert {r.key for r in recs} == {b"LZ_WEST"}
    # 21:00 local (02:00Z next day) is the documented scarcity spike, about $340 at hubs
    spike = next(r for r in raw if r["Time"] == "2025-07-01 21:00:00")
    at = next(m for m in msgs if m.interval_start_s == utc(2025, 7, 2, 2))
    assert at.price_usd_per_mwh == float(spike["LZ_WEST"])


def test_shift_moves_every_interval() -> None:
    frame = read_prices(RTM, "ercot_rtm_spp_15min")
    a = list(price_records(frame, "rt", ["HB_HUBAVG"]))
    b = list(price_records(frame, "rt", ["HB_HUBAVG"], shift_s=86400.0))
    assert [x.ts_s + 86400 for x in a] == [x.ts_s for x in b]


@pytest.mark.parametrize(
    ("file", "fmt", "point", "kind", "start", "price"),
    [
        # HE12 interval 1 = 11:00 CDT = 16:00Z; the LZ type, not LZEW (20.12)
        (
            "np6-905-cd_rt_spp_one_interval.csv",
            "ercot_rt_spp_api",
            "LZ_WEST",
            "rt",
            utc(2026, 9, 29, 16),
            20.11,
        ),
        (
            "np6-905-cd_rt_spp_one_interval.csv",
            "ercot_rt_spp_api",
            "HB_HUBAVG",
            "rt",
            utc(2026, 9, 29, 16),
            22.69,
        ),
        # DAM HE 01:00 = 00:00-01:00 CDT = 05:00Z; price has a leading space in the file
        (
            "np4-190-cd_dam_spp_two_hours.csv",
            "ercot_dam_spp_api",
            "LZ_WEST",
            "da",
            utc(2026, 9, 29, 5),
            24.82,
        ),
    ],
)
def test_public_api_formats(
    file: str, fmt: str, point: str, kind: Literal["rt", "da"], start: float, price: float
) -> None:
    frame = read_prices(API / file, fmt)
    msgs = [
        msgspec.json.decode(r.value, type=PriceSignal) for r in price_records(frame, kind, [point])
    ]
    assert msgs[0].interval_start_s == start
    assert msgs[0].price_usd_per_mwh == price
    assert msgs[0].kind == kind
    length = 900 if kind == "rt" else 3600
    assert all(m.interval_end_s - m.interval_start_s == length for m in msgs)


def test_unknown_settlement_point_is_named() -> None:
    frame = read_prices(RTM, "ercot_rtm_spp_15min")
    with pytest.raises(FeedError, match="LZ_NOWHERE"):
        list(price_records(frame, "rt", ["LZ_NOWHERE"]))


def test_unknown_price_format() -> None:
    with pytest.raises(FeedError, match="unknown price format"):
        read_prices(RTM, "pdf")


def test_fuel_mix_energy_becomes_average_mw() -> None:
    rows = [r for r in csv.DictReader(FUEL.open(), delimiter="\t") if r["Date"] == "07/01/2021"]

    def mwh(fuel: str) -> float:
        return float(next(r for r in rows if r["Fuel"] == fuel)["0:15"].replace(",", ""))

    recs = fuel_mix_records(read_fuel_mix(FUEL, "ercot_fuel_mix_15min"))
    first = msgspec.json.decode(next(iter(recs)).value, type=FuelMix)
    assert first.interval_start_s == utc(2021, 7, 1, 5)  # label 0:15 ends the 00:00 interval
    assert first.interval_end_s == utc(2021, 7, 1, 5, 15)
    # MWh in 15 minutes -> MW: x 4; Gas and Gas-CC are both NG, Biomass and Other both OTH
    assert first.generation_mw["NG"] == pytest.approx((mwh("Gas") + mwh("Gas-CC")) * 4)
    assert first.generation_mw["OTH"] == pytest.approx((mwh("Biomass") + mwh("Other")) * 4)
    assert first.generation_mw["WND"] == pytest.approx(mwh("Wind") * 4)


@pytest.mark.parametrize(
    ("file", "n", "market", "service", "start", "length", "price"),
    [
        (
            "np4-188-cd_dam_as_mcpc_two_hours.csv",
            10,
            "da",
            "NSPIN",
            utc(2026, 9, 29, 5),
            3600,
            "2.55",
        ),
        (
            "np6-331-cd_rt_as_mcpc_one_interval.csv",
            5,
            "rt",
            "REGDN",
            utc(2026, 9, 29, 16),
            900,
            "1.51",
        ),
    ],
)
def test_ancillary_clearing_prices(
    file: str, n: int, market: str, service: str, start: float, length: int, price: str
) -> None:
    rows = read_as_mcpc(API / file)
    assert len(rows) == n
    row = next(r for r in rows if r.service == service)
    assert (row.market, row.interval_start_s, row.interval_end_s - row.interval_start_s) == (
        market,
        start,
        length,
    )
    assert row.mcpc_usd_per_mw_h == Decimal(price)


def test_ancillary_wrong_file_is_named() -> None:
    with pytest.raises(FeedError, match="missing column"):
        read_as_mcpc(API / "np6-345-cd_actual_load_by_weather_zone_two_hours.csv")


def test_gridstatus_dam_export_is_day_ahead_hourly() -> None:
    path = DATA / "ercot_dam_hb_hubavg_hourly/ERCOT_DAM_HB_HUBAVG_2023.csv"
    raw = next(csv.DictReader(path.open()))
    frame = read_prices(path, "ercot_dam_hourly", "HB_HUBAVG")
    first = msgspec.json.decode(
        next(iter(price_records(frame, "da", ["HB_HUBAVG"]))).value, type=PriceSignal
    )
    assert raw["Datetime"] == "2023-01-01 00:00:00-06:00"  # CST midnight = 06:00Z
    assert first.interval_start_s == utc(2023, 1, 1, 6)
    assert first.interval_end_s == utc(2023, 1, 1, 7)
    assert first.price_usd_per_mwh == float(raw["Price (USD/MWh)"])
    assert first.kind == "da"
