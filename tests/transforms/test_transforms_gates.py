"""GX gates: pass on a good build, fail (with the right expectations) on a bad batch, and
raise when GX itself errors. GX import costs ~4 s, so the frames are built once."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from transforms.carbon import build_carbon_hourly
from transforms.energy import interval_energy
from transforms.gates import GateError, run_gate
from transforms.settlement import build_settlement

START = 1751346000  # 2025-07-01 05:00 UTC


@pytest.fixture(scope="module")
def marts() -> dict[str, pl.DataFrame]:
    n = 180  # 3 hours at 1 minute
    ai = [200e6 + 60_000 * (k % 11) for k in range(n)]
    power = pl.DataFrame({"site_id": "s", "ts_s": [START + 60 * k for k in range(n)],
                          "ai_w": ai, "mining_w": 70e6, "overhead_w": 12e6,
                          "contract_w": 300e6, "hashrate_ths": 4e6}).with_columns(
        total_w=pl.col("ai_w") + pl.col("mining_w") + pl.col("overhead_w")).with_columns(
        poi_meter_w=pl.col("total_w"))
    energy = interval_energy(power, max_gap_s=120, period_s=60)
    prices = energy.select("interval_start_s").with_columns(
        price_usd_per_mwh=pl.lit(Decimal("42.17")))
    contracts = pl.DataFrame({"site_id": ["s"], "start_s": [0], "end_s": [2**40],
                              "mw": [300.0], "price_usd_per_mwh": [Decimal("45.5")]})
    settlement = build_settlement(
        energy, prices, contracts,
        hashprice=pl.DataFrame({"start_s": [0], "hashprice_usd_per_ph_day": [50.0]}))
    carbon = build_carbon_hourly(
        energy, pl.DataFrame({"hour_start_s": [START + 3600 * h for h in range(3)],
                              "ci": [350.0, 360.0, 370.0]}), intensity_col="ci")
    return {"interval_energy": energy, "settlement": settlement, "carbon_hourly": carbon}


@pytest.mark.parametrize("mart", ["interval_energy", "settlement", "carbon_hourly"])
def test_good_build_passes(marts: dict[str, pl.DataFrame], mart: str) -> None:
    result = run_gate(mart, marts[mart])
    assert result.success, result.report()
    assert not result.failures
    assert result.report().startswith(f"gate {mart}: PASS")


def test_bad_settlement_batch_fails_on_each_fault(marts: dict[str, pl.DataFrame]) -> None:
    good = marts["settlement"]
    second = good["interval_start_s"][1]
    third = good["interval_start_s"][2]
    bad = pl.concat([good, good.head(1)])  # duplicate key
    bad = bad.with_columns(
        # components no longer sum to the total
        pl.when(pl.col("interval_start_s") == second).then(pl.col("net_usd") + Decimal("0.01"))
        .otherwise(pl.col("net_usd")).alias("net_usd"),
        # a price in the wrong unit (USD/kWh x 1e6)
        pl.when(pl.col("interval_start_s") == third)
        .then(pl.lit(Decimal("42170000"), dtype=pl.Decimal(38, 6)))
        .otherwise(pl.col("rt_price_usd_per_mwh")).alias("rt_price_usd_per_mwh"),
    )
    result = run_gate("settlement", bad)
    assert not result.success
    failed = {(o.expectation, o.target) for o in result.failures}
    assert failed == {
        ("expect_compound_columns_to_be_unique", "['site_id', 'interval_start_s']"),
        ("expect_column_values_to_be_between", "_gate_sum_residual"),
        ("expect_column_values_to_be_between", "rt_price_usd_per_mwh"),
    }, result.report()
    assert "FAIL" in result.report()


def test_missing_interval_and_unreconciled_energy_fail(marts: dict[str, pl.DataFrame]) -> None:
    e = marts["interval_energy"]
    bad = e.filter(pl.col("interval_start_s") != e["interval_start_s"][3]).with_columns(
        pl.when(pl.col("interval_start_s") == e["interval_start_s"][5]).then(False)
        .otherwise(pl.col("reconciled")).alias("reconciled"),
        pl.when(pl.col("interval_start_s") == e["interval_start_s"][6]).then(-1.0)
        .otherwise(pl.col("mining_mwh")).alias("mining_mwh"))
    result = run_gate("interval_energy", bad)
    failed = {o.target for o in result.failures}
    assert failed == {"_gate_gap_before", "reconciled", "mining_mwh", "_gate_sum_residual"}, \
        result.report()


def test_gate_that_raises_is_not_bad_data(marts: dict[str, pl.DataFrame]) -> None:
    # A text column where a number is expected makes GX raise inside the expectation.
    broken = marts["carbon_hourly"].with_columns(pl.col("intensity_g_per_kwh").cast(pl.String))
    with pytest.raises(GateError, match=r"raised inside GX.*intensity_g_per_kwh"):
        run_gate("carbon_hourly", broken)


def test_unknown_mart_and_missing_key_column(marts: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(KeyError, match="unknown mart"):
        run_gate("nope", marts["settlement"])
    with pytest.raises(GateError, match=r"lacks column\(s\) \['site_id'\]"):
        run_gate("settlement", marts["settlement"].drop("site_id"))
