"""Readers of the real files: shapes, UTC conversion, DST, dedupe, and error messages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from transforms.sources import (
    SHARED_DATA,
    SourceError,
    read_braiins_insights,
    read_coinmetrics_btc_daily,
    read_eia_avg_ci_hourly,
    read_eia_fuel_mix_hourly,
    read_emaps_carbon_hourly,
    read_ercot_dam_hourly,
    read_ercot_dam_spp_api,
    read_ercot_fuel_mix_15min,
    read_ercot_rt_spp_api,
    read_ercot_rtm_spp_15min,
)

DATA = SHARED_DATA
RTM = DATA / "ercot_rtm_spp_15min/ERCOT_RTM_SPP_hubs_loadzones_15min_2025-07-01_to_2025-07-03.csv"
API = DATA / "ercot_public_api_format_samples"
UTC = ZoneInfo("UTC")


def utc_s(y: int, mo: int, d: int, h: int = 0) -> int:
    return int(datetime(y, mo, d, h, tzinfo=UTC).timestamp())


def test_rtm_15min_long_and_utc() -> None:
    f = read_ercot_rtm_spp_15min(RTM)
    assert f.height == 288 * 15
    west = f.filter(pl.col("settlement_point") == "LZ_WEST")
    # First CSV row: 2025-07-01 00:00 CDT = 05:00 UTC, LZ_WEST 61.35.
    assert west.row(0, named=True)["interval_start_s"] == utc_s(2025, 7, 1, 5)
    assert west["price_usd_per_mwh"][0] == Decimal("61.35")
    assert west["interval_start_utc"][0].tzinfo is not None
    assert f.schema["price_usd_per_mwh"] == pl.Decimal(18, 6)


def test_rt_api_dedupes_load_zone_types() -> None:
    path = API / "np6-905-cd_rt_spp_one_interval.csv"
    lz = read_ercot_rt_spp_api(path)
    ew = read_ercot_rt_spp_api(path, load_zone_type="LZEW")
    for f in (lz, ew):
        assert f["settlement_point"].is_duplicated().sum() == 0
    pick = {t: f.filter(pl.col("settlement_point") == "LZ_WEST").row(0, named=True)
            for t, f in (("LZ", lz), ("LZEW", ew))}
    assert pick["LZ"]["price_usd_per_mwh"] == Decimal("20.11")
    assert pick["LZEW"]["price_usd_per_mwh"] == Decimal("20.12")
    # 09/29/2026 hour ending 12, interval 1 = 11:00 CDT = 16:00 UTC.
    assert pick["LZ"]["interval_start_s"] == utc_s(2026, 9, 29, 16)


def test_dam_api_leading_space_and_hour_ending() -> None:
    f = read_ercot_dam_spp_api(API / "np4-190-cd_dam_spp_two_hours.csv")
    west = f.filter(pl.col("settlement_point") == "LZ_WEST")
    assert west["price_usd_per_mwh"].to_list() == [Decimal("24.82"), Decimal("23.03")]
    # HE 01:00 on 09/29/2026 starts at 00:00 CDT = 05:00 UTC.
    assert west["hour_start_s"].to_list() == [utc_s(2026, 9, 29, 5), utc_s(2026, 9, 29, 6)]


def test_dam_hourly_dst_days() -> None:
    f = read_ercot_dam_hourly(DATA / "ercot_dam_hb_hubavg_hourly/ERCOT_DAM_HB_HUBAVG_2023.csv")
    assert f.height == 8760 and f["hour_start_s"].is_unique().all()
    local = f["hour_start_utc"].dt.convert_time_zone("America/Chicago").dt.date()
    per_day = f.with_columns(local.alias("d")).group_by("d").len()
    counts = dict(zip(per_day["d"].cast(pl.String), per_day["len"], strict=True))
    assert counts["2023-03-12"] == 23 and counts["2023-11-05"] == 25
    assert counts["2023-07-01"] == 24
    # The two 01:00 hours of 2023-11-05 (-05:00 then -06:00) are 06:00 and 07:00 UTC.
    rows = f.filter(pl.col("hour_start_s").is_in([utc_s(2023, 11, 5, 6), utc_s(2023, 11, 5, 7)]))
    assert rows["price_usd_per_mwh"].to_list() == [Decimal("22.49"), Decimal("25.61")]


def test_emaps_carbon_utf8_header() -> None:
    f = read_emaps_carbon_hourly(DATA / "ercot_carbon_intensity_hourly_emaps"
                                 / "US-TEX-ERCO_2023_hourly.csv")
    assert f.height == 8760
    first = f.row(0, named=True)
    assert first["hour_start_s"] == utc_s(2023, 1, 1, 0)
    assert (first["ci_direct_g_per_kwh"], first["ci_lca_g_per_kwh"]) == (269.79, 318.54)


def test_eia_mix_and_avg_ci() -> None:
    path = DATA / "ercot_hourly_fuelmix_carbon_2022/ERCO_NG_avgCI_2022.csv"
    mix = read_eia_fuel_mix_hourly(path)
    assert mix.height == 8760 * 8
    first = mix.filter(pl.col("interval_start_s") == utc_s(2022, 1, 1, 0))
    assert dict(zip(first["fuel"], first["generation_mwh"], strict=True))["WND"] == 16317.0
    ci = read_eia_avg_ci_hourly(path)
    assert ci["avg_ci_g_per_kwh"][0] == pytest.approx(334.2055847568988)


def test_fuel_mix_15min_fall_back_day() -> None:
    f = read_ercot_fuel_mix_15min(DATA / "ercot_fuel_mix_15min/IntGenByFuel202111.tsv")
    coal = f.filter(pl.col("fuel") == "COL")
    local_day = coal["interval_start_utc"].dt.convert_time_zone("America/Chicago").dt.date()
    n = coal.with_columns(local_day.alias("d")).group_by("d").len()
    counts = dict(zip(n["d"].cast(pl.String), n["len"], strict=True))
    assert counts["2021-11-07"] == 100 and counts["2021-11-01"] == 96
    by_t = dict(zip(coal["interval_start_s"], coal["generation_mwh"], strict=True))
    # Column "1:15" (first pass, CDT) starts 01:00 CDT = 06:00 UTC; "01:15 (DST)" (second
    # pass, CST) starts 01:00 CST = 07:00 UTC; "0:15" starts 00:00 CDT = 05:00 UTC.
    assert by_t[utc_s(2021, 11, 7, 5)] == 1868.9
    assert by_t[utc_s(2021, 11, 7, 6)] == 1810.2
    assert by_t[utc_s(2021, 11, 7, 7)] == 1787.0
    # Thousands separators: 11/01 Coal "2,033.6" in the first column.
    assert by_t[utc_s(2021, 11, 1, 5)] == 2033.6
    # Gas + Gas-CC sum into NG.
    ng = f.filter((pl.col("fuel") == "NG") & (pl.col("interval_start_s") == utc_s(2021, 11, 7, 5)))
    assert ng["generation_mwh"][0] == pytest.approx(194.0 + 1314.4)


def test_bitcoin_network_files() -> None:
    d = read_coinmetrics_btc_daily(DATA / "bitcoin_network/coinmetrics_btc_daily_2020-02-23_to"
                                   "_2020-03-29.csv")
    assert d.height == 36 and d["block_count"][0] == 142
    b = read_braiins_insights(DATA / "bitcoin_network/braiins_insights_hashrate-stats.json",
                              DATA / "bitcoin_network/braiins_insights_price-stats.json")
    assert b.row(0, named=True)["hashprice_usd_per_ph_day"] == pytest.approx(39.0)
    assert b["price_usd_per_btc"][0] == 89316.0


RTM_HEAD = "Time,LZ_WEST,HB_NORTH\n2025-07-01 00:00:00,61.35,51.47\n"


@pytest.mark.parametrize(
    ("name", "text", "reader", "message"),
    [
        ("bad_price.csv", RTM_HEAD + "2025-07-01 00:15:00,abc,50.11\n", read_ercot_rtm_spp_15min,
         r"bad_price.csv, line 3, column 'LZ_WEST': expected Decimal.*'abc'"),
        ("empty_price.csv", RTM_HEAD + "2025-07-01 00:15:00,,50.11\n", read_ercot_rtm_spp_15min,
         r"empty_price.csv, line 3, column 'LZ_WEST'"),
        ("bad_time.csv", RTM_HEAD + "07/01/2025 00:15,1,2\n", read_ercot_rtm_spp_15min,
         r"bad_time.csv, line 3, column 'Time': expected timestamp"),
        ("dup_time.csv", RTM_HEAD + "2025-07-01 00:00:00,1,2\n2025-07-01 00:00:00,1,2\n",
         read_ercot_rtm_spp_15min, r"dup_time.csv.*duplicate key"),
        ("no_time.csv", "When,LZ_WEST\n2025-07-01 00:00:00,1\n", read_ercot_rtm_spp_15min,
         r"no_time.csv, line 1: missing column\(s\) \['Time'\]"),
        ("gap_spring.csv", "Time,LZ_WEST\n2025-03-09 02:15:00,1\n", read_ercot_rtm_spp_15min,
         r"gap_spring.csv: local time not valid in America/Chicago"),
        ("dst_flag.csv", "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n"
         "09/29/2026,01:00,LZ_WEST, 24.82,X\n", read_ercot_dam_spp_api,
         r"dst_flag.csv, line 2, column 'DSTFlag': expected Y or N"),
        ("he.csv", "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n"
         "09/29/2026,1:30,LZ_WEST, 24.82,N\n", read_ercot_dam_spp_api,
         r"he.csv, line 2, column 'HourEnding': expected hour ending HH:00"),
        ("interval.csv", "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,"
         "SettlementPointType,SettlementPointPrice,DSTFlag\n09/29/2026,12,5,LZ_WEST,LZ,20.1,N\n",
         read_ercot_rt_spp_api, r"interval.csv, line 2, column 'DeliveryInterval': expected 1..4"),
        ("missing.csv", None, read_ercot_rtm_spp_15min, r"missing.csv: file not found"),
    ],
)
def test_reader_errors_name_file_line_column(tmp_path: Path, name: str, text: str | None,
                                             reader, message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf8")
    with pytest.raises(SourceError, match=message):
        reader(path)


def test_fuel_mix_errors(tmp_path: Path) -> None:
    head = "Date\tFuel\tSettlement Type\tTotal\t0:15\t0:30\n"
    bad_num = tmp_path / "mix_num.tsv"
    bad_num.write_text(head + "11/01/2021\tCoal\tFINAL\t1\t2,0x3.6\t1.0\n")
    with pytest.raises(SourceError, match=r"mix_num.tsv, line 2, column '0:15': expected a number"):
        read_ercot_fuel_mix_15min(bad_num)
    short = tmp_path / "mix_short.tsv"
    short.write_text(head + "11/01/2021\tCoal\tFINAL\t1\t2.0\t1.0\n")
    with pytest.raises(SourceError, match=r"mix_short.tsv, line 2: 2021-11-01 has 2 interval "
                                          r"values.*expected 96"):
        read_ercot_fuel_mix_15min(short)
    fuel = tmp_path / "mix_fuel.tsv"
    fuel.write_text(head + "11/01/2021\tPlasma\tFINAL\t1\t2.0\t1.0\n")
    with pytest.raises(SourceError, match=r"line 2, column 'Fuel': unknown fuel 'Plasma'"):
        read_ercot_fuel_mix_15min(fuel)


def test_json_error_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "hr.json"
    bad.write_text('{\n  "response": {\n  oops\n}')
    with pytest.raises(SourceError, match=r"hr.json, line 3: invalid JSON"):
        read_braiins_insights(bad, bad)


def test_rtm_fall_back_repeated_local_times(tmp_path: Path) -> None:
    """No DST in the real 3-day file; a fall-back extract repeats 01:00-01:45 local."""
    times = ["00:45", "01:00", "01:15", "01:30", "01:45", "01:00", "01:15", "01:30", "01:45",
             "02:00"]
    path = tmp_path / "fall.csv"
    path.write_text("Time,LZ_WEST\n" + "".join(f"2025-11-02 {t}:00,{i}\n"
                                               for i, t in enumerate(times)))
    f = read_ercot_rtm_spp_15min(path)
    starts = f["interval_start_s"].to_list()
    # 00:45 CDT = 05:45 UTC; then every 15 minutes without a repeat, up to 02:00 CST = 08:00.
    assert starts == list(range(utc_s(2025, 11, 2, 5) + 2700, utc_s(2025, 11, 2, 8) + 1, 900))
    assert f["price_usd_per_mwh"].to_list() == [Decimal(i) for i in range(10)]


@pytest.mark.parametrize(("flag", "hour_utc"), [("N", 6), ("Y", 7)])
def test_rt_api_dst_flag_places_the_repeated_hour(tmp_path: Path, flag: str,
                                                  hour_utc: int) -> None:
    # Fall-back day: hour ending 02 (01:00-02:00 local) happens twice; DSTFlag=Y is the
    # second pass, in CST.
    path = tmp_path / "rt.csv"
    path.write_text("DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,"
                    f"SettlementPointType,SettlementPointPrice,DSTFlag\n"
                    f"11/02/2025,2,1,LZ_WEST,LZ,20.11,{flag}\n")
    assert read_ercot_rt_spp_api(path)["interval_start_s"][0] == utc_s(2025, 11, 2, hour_utc)


def test_shared_data_is_found_beside_the_checkout_or_where_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from transforms.sources import shared_data_dir

    assert (shared_data_dir() / "SOURCES.md").is_file()
    monkeypatch.setenv("SPILLWAY_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
