"""GX gates: pass on a good build, fail (with the right expectations) on a bad batch, and
raise when GX itself errors. GX import costs ~4 s, so the frames are built once."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal

import polars as pl
import pytest

from transforms.carbon import build_carbon_hourly
from transforms.energy import interval_energy
from transforms.gates import GateError, period_start_of, run_gate
from transforms.settlement import build_settlement
from transforms.sources import SHARED_DATA

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


# ---------------------------------------------------------------- issue 23: signs, day edges

RT_SPP = SHARED_DATA / "ercot_market" / "rt_spp" / "wattgap_rtm_spp_lz_2023-07_08.csv"


def _lz_west(first: str, last: str) -> list[tuple[int, Decimal]]:
    """Real LZ_WEST RT prices (interval start, USD/MWh) between two local ISO stamps."""
    with RT_SPP.open(newline="") as fh:
        rows = [(int(datetime.fromisoformat(r["interval_start_ct"]).timestamp()),
                 Decimal(r["LZ_WEST"])) for r in csv.DictReader(fh)
                if first <= r["interval_start_ct"] <= last]
    assert rows, f"no LZ_WEST rows between {first} and {last}"
    return rows


def test_negative_price_purchase_and_sell_back_pass_the_gate() -> None:
    # 2023-07-18 09:15-10:30 CDT: six consecutive negative LZ_WEST intervals (-1.01 at 10:00).
    prices = _lz_west("2023-07-18T09:15:00-05:00", "2023-07-18T10:30:00-05:00")
    assert len(prices) == 6 and all(p < 0 for _, p in prices)
    starts = [s for s, _ in prices]
    # 100 MW contract (25 MWh): alternate a draw above it (31 MWh) and below it (20 MWh).
    poi = [31.0 if k % 2 == 0 else 20.0 for k in range(len(starts))]
    energy = pl.DataFrame({"site_id": "w", "interval_start_s": starts, "ai_mwh": poi,
                           "mining_mwh": 0.0, "overhead_mwh": 0.0, "poi_mwh": poi,
                           "hashrate_ph_days": 0.0})
    settlement = build_settlement(
        energy, pl.DataFrame({"interval_start_s": starts,
                              "price_usd_per_mwh": [p for _, p in prices]}),
        pl.DataFrame({"site_id": ["w"], "start_s": [0], "end_s": [2**40], "mw": [100.0],
                      "price_usd_per_mwh": [Decimal("30")]}))
    at_10 = settlement.filter(pl.col("interval_start_s") == starts[3]).row(0, named=True)
    assert at_10["rt_price_usd_per_mwh"] == Decimal("-1.01")
    assert at_10["rt_sell_back_usd"] == Decimal("-5.05")  # selling 5 MWh at -1.01 costs
    first = settlement.row(0, named=True)
    assert first["rt_purchase_usd"] == Decimal("6.00") * -first["rt_price_usd_per_mwh"]
    assert first["rt_purchase_usd"] > 0  # buying at a negative price is paid to the site
    result = run_gate("settlement", settlement, period_s=(starts[0], starts[-1] + 900))
    assert result.success, result.report()


def test_a_sign_against_the_price_fails() -> None:
    iv = 1689692400  # 2023-07-18 10:00 CDT, LZ_WEST -1.01
    energy = pl.DataFrame([{"site_id": "w", "interval_start_s": iv, "ai_mwh": 31.0,
                            "mining_mwh": 0.0, "overhead_mwh": 0.0, "poi_mwh": 31.0,
                            "hashrate_ph_days": 0.0}])
    good = build_settlement(
        energy, pl.DataFrame({"interval_start_s": [iv], "price_usd_per_mwh": [Decimal("-1.01")]}),
        pl.DataFrame({"site_id": ["w"], "start_s": [0], "end_s": [2**40], "mw": [100.0],
                      "price_usd_per_mwh": [Decimal("30")]}))
    flipped = good.with_columns(-pl.col("rt_purchase_usd"),
                                pl.col("net_usd") - 2 * pl.col("rt_purchase_usd"))
    result = run_gate("settlement", flipped, period_s=(iv, iv + 900))
    assert {o.target for o in result.failures} == {"_gate_sign_rt_purchase_usd"}, \
        result.report()


@pytest.mark.parametrize("mart", ["interval_energy", "settlement"])
def test_a_day_without_its_first_intervals_is_not_complete(
        marts: dict[str, pl.DataFrame], mart: str) -> None:
    # START is local midnight (CDT): the two first intervals of the day are absent.
    late = marts[mart].filter(pl.col("interval_start_s") >= START + 1800)
    result = run_gate(mart, late)
    assert {o.target for o in result.failures} == {"_gate_gap_before"}, result.report()
    explicit = run_gate(mart, late, period_s=(START, START + 3 * 3600))
    assert {o.target for o in explicit.failures} == {"_gate_gap_before"}


def test_a_day_without_its_last_intervals_fails_when_its_end_is_given(
        marts: dict[str, pl.DataFrame]) -> None:
    early = marts["settlement"].filter(pl.col("interval_start_s") < START + 3 * 3600 - 900)
    assert run_gate("settlement", early).success  # no end given: a day still in progress
    result = run_gate("settlement", early, period_s=(START, START + 3 * 3600))
    assert {o.target for o in result.failures} == {"_gate_gap_after"}, result.report()
    full = run_gate("settlement", marts["settlement"], period_s=(START, START + 3 * 3600))
    assert full.success, full.report()


@pytest.mark.parametrize(
    ("first", "start"),
    [(START, START),  # 00:00 CDT
     (START + 900, START),  # 00:15 CDT: one interval missing since local midnight
     (1751328000 + 900, 1751328000),  # 00:15 UTC: since UTC midnight (a UTC partition)
     (1762059600, 1762059600)],  # 2025-11-02 00:00 CDT, the fall-back day
)
def test_period_start_of(first: int, start: int) -> None:
    assert period_start_of(first) == start


def test_a_held_interval_fails_the_settlement_gate(marts: dict[str, pl.DataFrame]) -> None:
    e = marts["interval_energy"]
    gap = e.with_columns(
        pl.when(pl.col("interval_start_s") == e["interval_start_s"][4]).then(None)
        .otherwise(pl.col("poi_mwh")).alias("poi_mwh"))
    prices = e.select("interval_start_s", price_usd_per_mwh=pl.lit(Decimal("42.17")))
    contracts = pl.DataFrame({"site_id": ["s"], "start_s": [0], "end_s": [2**40],
                              "mw": [300.0], "price_usd_per_mwh": [Decimal("45.5")]})
    settlement = build_settlement(
        gap, prices, contracts,
        hashprice=pl.DataFrame({"start_s": [0], "hashprice_usd_per_ph_day": [50.0]}))
    failed = {o.target for o in run_gate("settlement", settlement).failures}
    assert "settled" in failed and "net_usd" in failed
