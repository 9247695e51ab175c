"""Every output column is documented with a unit in ``transforms.columns.COLUMNS``."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from transforms import sources
from transforms.calendar import hourly_buckets, settlement_intervals
from transforms.carbon import build_carbon_hourly, intensity_from_fuel_mix
from transforms.columns import COLUMNS
from transforms.energy import counter_interval_energy, interval_energy
from transforms.settlement import build_settlement, hashprice_from_network
from transforms.sources import SHARED_DATA

DATA = SHARED_DATA


def _energy() -> pl.DataFrame:
    power = pl.DataFrame({"site_id": "s", "ts_s": list(range(0, 3600, 60)), "ai_w": 1e6,
                          "mining_w": 1e6, "overhead_w": 1e5, "total_w": 2.1e6,
                          "poi_meter_w": 2.1e6, "contract_w": 3e6, "hashrate_ths": 1e5})
    return interval_energy(power, max_gap_s=60, period_s=60)


def _outputs() -> dict[str, pl.DataFrame]:
    e = _energy()
    coin = sources.read_coinmetrics_btc_daily(
        DATA / "bitcoin_network/coinmetrics_btc_daily_2020-02-23_to_2020-03-29.csv")
    return {
        "settlement_intervals": settlement_intervals(date(2025, 7, 1)),
        "hourly_buckets": hourly_buckets(date(2025, 7, 1)),
        "prices_15min": sources.read_ercot_rtm_spp_15min(
            DATA / "ercot_rtm_spp_15min/ERCOT_RTM_SPP_hubs_loadzones_15min_2025-07-01_to_"
            "2025-07-03.csv"),
        "rt_spp_api": sources.read_ercot_rt_spp_api(
            DATA / "ercot_public_api_format_samples/np6-905-cd_rt_spp_one_interval.csv"),
        "prices_hourly": sources.read_ercot_dam_spp_api(
            DATA / "ercot_public_api_format_samples/np4-190-cd_dam_spp_two_hours.csv"),
        "btc_network_daily": coin,
        "btc_snapshot": sources.read_braiins_insights(
            DATA / "bitcoin_network/braiins_insights_hashrate-stats.json",
            DATA / "bitcoin_network/braiins_insights_price-stats.json"),
        "interval_energy": e,
        "counter_energy": counter_interval_energy(
            pl.DataFrame({"ts_s": [0, 1], "wh": [0, 1]}), counter_col="wh"),
        "settlement": build_settlement(
            e, e.select("interval_start_s", price_usd_per_mwh=pl.lit(Decimal("1"))),
            pl.DataFrame({"site_id": ["s"], "start_s": [0], "end_s": [3600], "mw": [3.0],
                          "price_usd_per_mwh": [40.0]}),
            hashprice=pl.DataFrame({"start_s": [0], "hashprice_usd_per_ph_day": [50.0]})),
        "hashprice": hashprice_from_network(coin),
        "grid_intensity": intensity_from_fuel_mix(pl.DataFrame(
            {"interval_start_s": [0], "fuel": ["NG"], "generation_mwh": [1.0]})),
        "carbon_hourly": build_carbon_hourly(
            e, pl.DataFrame({"hour_start_s": [0], "ci": [1.0]}), intensity_col="ci"),
    }


def test_every_output_column_is_documented() -> None:
    outputs = _outputs()
    for table, frame in outputs.items():
        assert frame.columns == list(COLUMNS[table]), table


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_descriptions_name_a_unit_or_kind(table: str) -> None:
    unit = re.compile(r"(MWh|USD|UTC|gCO2|W\b|s\b|count|fraction|percent|BTC|PH|TH|EH|true|"
                      r"name|identifier|code|date|timestamp|dimensionless|1-based|hour ending|id)")
    for column, text in COLUMNS[table].items():
        assert unit.search(text), f"{table}.{column}: {text!r} names no unit"
