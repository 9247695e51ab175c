"""Credits and 4CP in the published settlement (issue 23): ``settle_intervals`` passes
awards and 4CP intervals through to ``build_settlement``, and the published mart reads the
peak, award and position files its site config names."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import polars as pl

from streams.marts.configs import ConfigMessage, site_config_frame
from streams.marts.publish import publish
from streams.marts.settle import settle_intervals
from tests.marts.helpers import rt_price, site_config
from tests.marts.test_publish import FakeGate
from tests.marts.test_settlement_mart import Sink, _seconds, _settlement
from transforms.sources import SHARED_DATA

FOUR_CP = SHARED_DATA / "ercot_market" / "events" / "kylejones_4CP_dates.csv"


def four_cp_interval_start(year: int, month: str) -> int:
    """ERCOT's 4CP interval of a month (the file gives the interval END, CPT), as the
    interval start in UTC epoch seconds. Read here only: the file's licence is unclear."""
    with FOUR_CP.open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Year"] == str(year))
    end = datetime.strptime(row[month], "%m/%d/%Y %H:%M").replace(
        tzinfo=ZoneInfo("America/Chicago"))
    return int(end.timestamp()) - 900


CP = four_cp_interval_start(2025, "August")  # 2025-08-18 16:45-17:00 CDT


def test_four_cp_interval_is_read_as_its_start() -> None:
    assert datetime.fromtimestamp(CP, ZoneInfo("America/Chicago")).strftime(
        "%Y-%m-%d %H:%M") == "2025-08-18 16:45"


def test_settle_intervals_passes_awards_and_four_cp_through() -> None:
    # 160 MW through the POI for the whole 4CP interval: 40 MWh.
    energy = pl.DataFrame({"site_id": ["s", "t"], "interval_start_s": [CP, CP],
                           "ai_mwh": 30.0, "mining_mwh": 8.0, "overhead_mwh": 2.0,
                           "poi_mwh": 40.0, "hashrate_ph_days": 0.0, "updated_s": 0.0})
    prices = pl.DataFrame({"market": "ERCOT", "settlement_point": "LZ_WEST", "kind": "rt",
                           "interval_start_s": [CP], "price_usd_per_mwh": [Decimal("100")]})
    configs = site_config_frame([ConfigMessage(site_config(s), 0, i, 0.0)
                                 for i, s in enumerate(["s", "t"])])
    credits = pl.DataFrame({"site_id": ["s", "s"], "start_s": [CP, CP], "end_s": [CP + 900] * 2,
                            "kind": ["dr", "ancillary"], "mw": [20.0, 10.0],
                            "price_usd_per_mw_h": [Decimal("12"), Decimal("7.5")]})
    out = settle_intervals(energy.drop("updated_s"), prices, configs, credits=credits,
                           four_cp_intervals=pl.DataFrame({"interval_start_s": [CP]}),
                           four_cp_rate_usd_per_kw_year=Decimal("5.5"))
    assert out is not None
    s, t = out.row(0, named=True), out.row(1, named=True)
    assert (s["dr_credit_usd"], s["ancillary_credit_usd"]) == (Decimal("60.00"),
                                                               Decimal("18.75"))
    assert (t["dr_credit_usd"], t["ancillary_credit_usd"]) == (Decimal("0.00"),
                                                               Decimal("0.00"))
    # 40 MWh in 15 min = 160,000 kW average; a quarter of the tag x $5.5/kW-yr.
    assert s["four_cp_usd"] == t["four_cp_usd"] == Decimal("-220000.00")


def test_published_settlement_carries_four_cp_exposure(tmp_path: Path) -> None:
    from streams.marts.store import open_store

    con = open_store(tmp_path / "sink.duckdb")
    try:
        sink = Sink(con)
        config = msgspec.structs.replace(site_config("s"), four_cp_peaks_file=str(FOUR_CP),
                                         transmission_rate_usd_per_kw_year=5.5)
        sink.write(_seconds(range(CP, CP + 901)) + [("grid.prices.v1", rt_price(CP, 100.0))],
                   configs=[config])
        publish(con, tmp_path / "marts", gate=FakeGate(), now_s=CP + 1000)
        row = _settlement(tmp_path / "marts")[CP]
    finally:
        con.close()
    assert row["settled"] and row["poi_mwh"] == Decimal("40")
    # The site drew 160 MW in August 2025's 4CP interval: 160,000 kW / 4 x $5.5/kW-yr.
    assert row["four_cp_usd"] == Decimal("-220000.00")
