"""Compatibility with the real publisher (``streams.marts``): rows written by the sink's
store and published twice (two generations on disk) are read once, and the reports built
from them (settlement derived from the published interval energy, prices and a site
contract; carbon from the published carbon_hourly) match a plain-Python ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from schemas.site import ContractBlock, CurtailmentPolicy, SiteConfig
from streams.marts.publish import publish
from streams.marts.store import Batch, open_store, write_batch
from streams.reports.month_close import close_carbon, close_settlement
from tests.reports.synthetic import mart_frame, stub_gate
from transforms.reports.period import Period

CHICAGO = ZoneInfo("America/Chicago")
START = int(datetime(2025, 11, 2, 0, 0, tzinfo=CHICAGO).timestamp())
HOURS = 3  # 00:00-03:00 local on the fall-back day: 01:00 CDT, 01:00 CST, 02:00 CST
PRICE = Decimal("31.25")
CONTRACT = Decimal("40.50")


_frame = mart_frame


def _site_power(start: int, seconds: int) -> pl.DataFrame:
    ts = list(range(start, start + seconds))
    ai = [120e6 + 60.0 * (t % 600) for t in ts]  # whole watts: exact decimals on both sides
    mining = [30e6] * seconds
    over = [6e6] * seconds
    total = [a + m + o for a, m, o in zip(ai, mining, over, strict=True)]
    return _frame("site_power", {
        "site_id": ["s"] * seconds, "ts_s": ts, "ai_w": ai, "mining_w": mining,
        "overhead_w": over, "total_w": total, "poi_meter_w": total,
        "poi_energy_wh": [None] * seconds, "ai_energy_wh": [None] * seconds,
        "mining_energy_wh": [None] * seconds, "contract_w": [200e6] * seconds,
        "surplus_w": [200e6 - a - 6e6 for a in ai],
        "hashrate_ths": [0.0] * seconds, "readings": [1] * seconds,
        "late_readings": [0] * seconds, "flags": [[] for _ in ts],
        "emitted_s": [t + 0.5 for t in ts]})


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sink")
    con = open_store(root / "sink.duckdb")
    hours = [START + 3600 * h for h in range(HOURS)]
    intervals = [START + 900 * k for k in range(4 * HOURS)]
    grid = {
        "grid_carbon": _frame("grid_carbon", {
            "region": ["ERCOT"] * HOURS, "kind": ["average"] * HOURS,
            "hour_start_s": [float(h) for h in hours],
            "intensity_g_per_kwh": [400.0, 350.0, 300.0], "source": ["test"] * HOURS}),
        "grid_prices": _frame("grid_prices", {
            "market": ["ERCOT"] * len(intervals), "settlement_point": ["LZ_WEST"] * len(
                intervals), "kind": ["rt"] * len(intervals),
            "interval_start_s": [float(s) for s in intervals],
            "interval_end_s": [float(s + 900) for s in intervals],
            "price_usd_per_mwh": [PRICE] * len(intervals),
            "published_s": [0.0] * len(intervals)}),
    }
    half = 1800 * HOURS  # first half, publish (generation 1), second half + 10 s, publish
    write_batch(con, Batch(frames={"site_power": _site_power(START, half), **grid},
                           offsets={("t", 0): 1}))
    publish(con, root / "marts", gate=stub_gate, now_s=START + half)
    write_batch(con, Batch(frames={"site_power": _site_power(START + half, half + 10)},
                           offsets={("t", 0): 2}))
    publish(con, root / "marts", gate=stub_gate, now_s=START + 2 * half)
    con.close()
    return root / "marts"


def test_two_generations_on_disk_are_read_once(marts: Path, tmp_path: Path) -> None:
    assert len(list((marts / "_manifests").glob("gen-*.json"))) == 2
    got = close_carbon(marts, Period.month("2025-11"), tmp_path, gate=stub_gate)
    report = got.report
    assert report.hours.height == HOURS  # a restated hour counted twice would show here
    # independent: per hour, sum of W x 1 s -> kWh x g/kWh
    expected = Decimal(0)
    for h, ci in zip(range(HOURS), (400, 350, 300), strict=True):
        ts = range(START + 3600 * h, START + 3600 * (h + 1))
        wh = sum((Decimal(156_000_000 + 60 * (t % 600)) for t in ts), Decimal(0)) / 3600
        expected += (wh / 1000 * ci).quantize(Decimal("0.001"))
    assert abs(report.summary["location_g"][0] - expected) <= Decimal("0.003")
    local = report.hours["hour_start_local"].to_list()
    assert local == ["2025-11-02T00:00:00-05:00", "2025-11-02T01:00:00-05:00",
                     "2025-11-02T01:00:00-06:00"]


def test_settlement_derived_from_published_energy_and_prices(marts: Path,
                                                             tmp_path: Path) -> None:
    site = SiteConfig(site_id="s", name="t", settlement_point="LZ_WEST",
                      interconnection_limit_mw=250.0,
                      contract=[ContractBlock(start_s=START, end_s=START + 3600 * HOURS,
                                              mw=200.0, price_usd_per_mwh=float(CONTRACT))],
                      gpu_pools=[], asic_models=[], meters=[],
                      policy=CurtailmentPolicy(hashprice_usd_per_ph_day=50.0))
    got = close_settlement(marts, Period.month("2025-11"), tmp_path, gate=stub_gate, site=site)
    rows = got.report.intervals
    assert rows.height == 4 * HOURS
    cent = Decimal("0.01")
    for r in rows.iter_rows(named=True):
        t0 = r["interval_start_s"]
        poi = sum((Decimal(156_000_000 + 60 * (t % 600)) for t in range(t0, t0 + 900)),
                  Decimal(0)) / Decimal(3_600_000_000)
        poi = poi.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
        assert r["poi_mwh"] == poi
        assert r["forward_usd"] == (-Decimal(50) * CONTRACT).quantize(cent)  # 200 MW x 1/4 h
        assert r["rt_sell_back_usd"] == ((Decimal(50) - poi) * PRICE).quantize(
            cent, rounding=ROUND_HALF_EVEN)
    sources = {s.table: s for s in got.report.sources}
    assert sources["interval_energy"].note.startswith("manifest gen 2")
