"""A month close derived without the settlement mart values mining as the mart does: at
the network hashprice in force at each interval (published, possibly days before the
period), the site's policy value only before the first one, net of the pool fee."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import polars as pl

from schemas.site import ContractBlock, CurtailmentPolicy, SiteConfig
from streams.marts.publish import publish
from streams.marts.store import Batch, open_store, write_batch
from streams.reports.month_close import close_settlement
from tests.reports.synthetic import mart_frame, stub_gate
from transforms.reports.period import Period

START = int(datetime(2025, 8, 12, 5, 0, tzinfo=UTC).timestamp())
SECONDS = 3600
THS = 4000.0  # 4 PH/s
FEE = Decimal("0.02")
EARLY = (START - 86_400, Decimal("48.000000"))  # published the day before: in force at START
LATER = (START + 1800, Decimal("52.500000"))  # from the third interval on


_frame = mart_frame


def _site_power() -> pl.DataFrame:
    ts = list(range(START, START + SECONDS))
    n = len(ts)
    return _frame(
        "site_power",
        {
            "site_id": ["s"] * n,
            "ts_s": ts,
            "ai_w": [100e6] * n,
            "mining_w": [20e6] * n,
            "overhead_w": [5e6] * n,
            "total_w": [125e6] * n,
            "poi_meter_w": [125e6] * n,
            "poi_energy_wh": [None] * n,
            "ai_energy_wh": [None] * n,
            "mining_energy_wh": [None] * n,
            "contract_w": [150e6] * n,
            "surplus_w": [25e6] * n,
            "hashrate_ths": [THS] * n,
            "readings": [1] * n,
            "late_readings": [0] * n,
            "flags": [[] for _ in ts],
            "emitted_s": [t + 0.5 for t in ts],
        },
    )


def _hashprice() -> pl.DataFrame:
    rows = [EARLY, LATER]
    return _frame(
        "grid_hashprice",
        {
            "source": ["network"] * 2,
            "ts_s": [float(t) for t, _ in rows],
            "published_s": [float(t) for t, _ in rows],
            "usd_per_ph_day": [v for _, v in rows],
            "difficulty": [None] * 2,
            "subsidy_btc_per_block": [None] * 2,
            "fees_btc_per_block": [None] * 2,
            "btc_price_usd": [None] * 2,
        },
    )


def _prices() -> pl.DataFrame:
    starts = [START + 900 * k for k in range(SECONDS // 900)]
    n = len(starts)
    return _frame(
        "grid_prices",
        {
            "market": ["ERCOT"] * n,
            "settlement_point": ["LZ_WEST"] * n,
            "kind": ["rt"] * n,
            "interval_start_s": [float(s) for s in starts],
            "interval_end_s": [float(s + 900) for s in starts],
            "price_usd_per_mwh": [Decimal("30.00")] * n,
            "published_s": [0.0] * n,
        },
    )


def test_derived_settlement_uses_the_hashprice_in_force_net_of_the_pool_fee(
    tmp_path: Path,
) -> None:
    con = open_store(tmp_path / "sink.duckdb")
    write_batch(con, Batch(frames={"grid_hashprice": _hashprice()}, offsets={("h", 0): 1}))
    write_batch(
        con,
        Batch(
            frames={"site_power": _site_power(), "grid_prices": _prices()}, offsets={("t", 0): 1}
        ),
    )
    publish(con, tmp_path / "marts", gate=stub_gate, now_s=START + SECONDS + 3600)
    con.close()
    site = SiteConfig(
        site_id="s",
        name="t",
        settlement_point="LZ_WEST",
        interconnection_limit_mw=250.0,
        contract=[
            ContractBlock(start_s=START, end_s=START + SECONDS, mw=150.0, price_usd_per_mwh=40.0)
        ],
        gpu_pools=[],
        asic_models=[],
        meters=[],
        policy=CurtailmentPolicy(hashprice_usd_per_ph_day=50.0, pool_fee_fraction=float(FEE)),
    )
    got = close_settlement(
        tmp_path / "marts", Period.month("2025-08"), tmp_path, gate=stub_gate, site=site
    )
    rows = got.report.intervals.sort("interval_start_s")
    assert rows.height == 4
    cent = Decimal("0.01")
    for r in rows.iter_rows(named=True):
        # Independent: 4 PH/s for 900 s, the value in force at the interval's start.
        ph_days = Decimal(4) * 900 / 86_400
        assert abs(Decimal(r["hashrate_ph_days"]) - ph_days) < Decimal("1e-9")
        hp = LATER[1] if r["interval_start_s"] >= LATER[0] else EARLY[1]
        gross = (Decimal(r["hashrate_ph_days"]) * hp).quantize(cent, rounding=ROUND_HALF_EVEN)
        net = (Decimal(r["hashrate_ph_days"]) * hp * (1 - FEE)).quantize(
            cent, rounding=ROUND_HALF_EVEN
        )
        assert r["mining_revenue_usd"] == net, r
        assert r["mining_pool_fee_usd"] == gross - net
    notes = {s.table: s.note for s in got.report.sources}
    assert "network hashprice in force (2 value(s) published)" in notes["settlement (derived)"]
    assert "pool fee 0.02" in notes["settlement (derived)"]
    assert "grid_hashprice" in notes
