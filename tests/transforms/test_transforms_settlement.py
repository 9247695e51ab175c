"""Settlement unit cases: hashprice, signs, rounding rule, credits, 4CP, input errors."""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import polars as pl
import pytest

from transforms.settlement import (
    COMPONENTS,
    SettlementInputError,
    build_settlement,
    hashprice_from_network,
    hashprice_usd_per_ph_day,
)
from transforms.sources import SHARED_DATA, read_coinmetrics_btc_daily

COINMETRICS = (
    SHARED_DATA / "bitcoin_network" / "coinmetrics_btc_daily_2020-02-23_to_2020-03-29.csv"
)


def test_hashprice_worked_example() -> None:
    # Independent route: 144 blocks/day at 600 s/block; network hashrate = D x 2^32 / 600.
    network_ph_s = 100e12 * 2**32 / 600 / 1e15
    expected = 144 * 3.125 * 100_000 / network_ph_s
    got = hashprice_usd_per_ph_day(100e12, 3.125, 100_000)
    assert got == pytest.approx(expected, rel=1e-12)
    # domain.md quotes $62.81; the formula it states gives $62.86 (0.08 % apart).
    assert got == pytest.approx(62.86, abs=0.005)
    assert got == pytest.approx(62.81, rel=1e-3)


def test_hashprice_from_network_matches_coinmetrics_hashrate() -> None:
    # SOURCES.md: hashprice (USD/TH/day) = (IssTotNtv + FeeTotNtv) x PriceUSD / HashRate.
    with COINMETRICS.open(newline="") as fh:
        ref = [(float(r["IssTotNtv"]) + float(r["FeeTotNtv"])) * float(r["PriceUSD"])
               / float(r["HashRate"]) * 1000 for r in csv.DictReader(fh)]
    got = hashprice_from_network(read_coinmetrics_btc_daily(COINMETRICS))
    assert got["hashprice_usd_per_ph_day"].to_list() == pytest.approx(ref, rel=1e-9)
    assert min(ref) == pytest.approx(78, abs=1) and max(ref) == pytest.approx(163, abs=1)


def test_hashprice_rejects_zero_difficulty() -> None:
    with pytest.raises(SettlementInputError, match="difficulty"):
        hashprice_usd_per_ph_day(0, 3.125, 1)


def energy_row(poi: float, iv: int = 0, ph_days: float = 0.0) -> dict[str, object]:
    return {"site_id": "s", "interval_start_s": iv, "ai_mwh": poi / 2, "mining_mwh": poi / 4,
            "overhead_mwh": poi / 4, "poi_mwh": poi, "hashrate_ph_days": ph_days}


def settle(poi: float, price: str, *, contract_mw: float = 100.0,
           contract_price: str = "40", **kw: Any) -> dict[str, Any]:
    energy = pl.DataFrame([energy_row(poi, ph_days=float(kw.pop("ph_days", 0.0)))])
    prices = pl.DataFrame({"interval_start_s": [0], "price_usd_per_mwh": [Decimal(price)]})
    contracts = pl.DataFrame({"site_id": ["s"], "start_s": [0], "end_s": [900],
                              "mw": [contract_mw], "price_usd_per_mwh": [Decimal(contract_price)]})
    return build_settlement(energy, prices, contracts, **kw).row(0, named=True)


@pytest.mark.parametrize(
    ("poi", "price", "sell", "buy", "sell_usd", "buy_usd"),
    [
        (20.0, "100", "5", "0", "500.00", "0.00"),  # 25 MWh forward, 20 used: sell 5
        (30.0, "100", "0", "5", "0.00", "-500.00"),  # draw 5 above contract: buy 5
        (25.0, "100", "0", "0", "0.00", "0.00"),
        (20.0, "-12.34", "5", "0", "-61.70", "0.00"),  # negative price: selling back costs
        (20.123457, "33.33", "4.876543", "0", "162.54", "0.00"),  # 162.53517819 -> .54
    ],
)
def test_imbalance_signs(poi: float, price: str, sell: str, buy: str, sell_usd: str,
                         buy_usd: str) -> None:
    r = settle(poi, price)
    assert (r["sell_back_mwh"], r["purchase_mwh"]) == (Decimal(sell), Decimal(buy))
    assert (r["rt_sell_back_usd"], r["rt_purchase_usd"]) == (Decimal(sell_usd), Decimal(buy_usd))
    assert r["forward_usd"] == Decimal("-1000.00")  # 25 MWh x $40
    assert r["net_usd"] == sum((Decimal(r[c]) for c in COMPONENTS), Decimal(0))


@pytest.mark.parametrize(
    ("mwh", "price", "expected"),
    [
        # exact products ending in a half cent: half-even goes to the even cent
        ("0.5", "0.01", "0.00"),  # 0.005 -> 0.00
        ("1.5", "0.01", "0.02"),  # 0.015 -> 0.02
        ("2.5", "0.01", "0.02"),  # 0.025 -> 0.02
        ("0.000001", "4999.999999", "0.00"),
        # 0.005000005: the digits past the 6th decide; truncating the product would give 0.00
        ("1.000001", "0.005", "0.01"),
    ],
)
def test_rounding_is_half_even(mwh: str, price: str, expected: str) -> None:
    # Sell-back of exactly `mwh` at `price`: forward = 2 MWh at $0 (8 MW x 0.25 h),
    # POI = 2 - mwh.
    poi = float(Decimal(2) - Decimal(mwh))
    r = settle(poi, price, contract_mw=8.0, contract_price="0")
    assert r["sell_back_mwh"] == Decimal(mwh)
    assert r["rt_sell_back_usd"] == Decimal(expected)
    assert (Decimal(mwh) * Decimal(price)).quantize(Decimal("0.01"), ROUND_HALF_EVEN) == \
        Decimal(expected)


def test_mining_credits_and_four_cp() -> None:
    credits = pl.DataFrame({
        "site_id": ["s", "s", "s"], "start_s": [300, 0, 5000], "end_s": [1200, 900, 6000],
        "kind": ["dr", "ancillary", "dr"], "mw": [30.0, 10.0, 99.0],
        "price_usd_per_mw_h": [Decimal("100"), Decimal("7.5"), Decimal("1")]})
    r = settle(25.0, "50", ph_days=2.5,
               hashprice=pl.DataFrame({"start_s": [-10, 0, 901],
                                       "hashprice_usd_per_ph_day": [1.0, 52.4, 99.0]}),
               credits=credits, four_cp_intervals=pl.DataFrame({"interval_start_s": [0]}),
               four_cp_rate_usd_per_kw_year=Decimal("55.5"), four_cp_method="12CP")
    assert r["mining_revenue_usd"] == Decimal("131.00")  # 2.5 PH-days x $52.4 (start_s 0)
    assert r["dr_credit_usd"] == Decimal("500.00")  # 30 MW x 600 s of overlap x $100
    assert r["ancillary_credit_usd"] == Decimal("18.75")  # 10 MW x 0.25 h x $7.5
    # 25 MWh in 15 min = 100,000 kW average; a January peak counts under 12CP only: 1/12 of
    # the tag x $55.5/kW-yr.
    assert r["four_cp_usd"] == Decimal("-462500.00")
    assert r["net_usd"] == sum((Decimal(r[c]) for c in COMPONENTS), Decimal(0))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e, p, c: (e, p.with_columns(interval_start_s=pl.lit(900)), c), "no RT price"),
        (lambda e, p, c: (e, pl.concat([p, p]), c), r"duplicate \['interval_start_s'\]"),
        (lambda e, p, c: (e, p, c.drop("mw")), r"contracts\): missing column"),
        (lambda e, p, c: (e.with_columns(hashrate_ph_days=pl.lit(1.0)), p, c),
         "mining work but no hashprice"),
    ],
)
def test_input_errors(mutate, message: str) -> None:
    e = pl.DataFrame([energy_row(25.0)])
    p = pl.DataFrame({"interval_start_s": [0], "price_usd_per_mwh": [Decimal("1")]})
    c = pl.DataFrame({"site_id": ["s"], "start_s": [0], "end_s": [900], "mw": [1.0],
                      "price_usd_per_mwh": [Decimal("1")]})
    with pytest.raises(SettlementInputError, match=message):
        build_settlement(*mutate(e, p, c))


def test_bad_credit_kind() -> None:
    with pytest.raises(SettlementInputError, match="kind must be"):
        settle(25.0, "1", credits=pl.DataFrame({
            "site_id": ["s"], "start_s": [0], "end_s": [900], "kind": ["capacity"],
            "mw": [1.0], "price_usd_per_mw_h": [1.0]}))


def test_prices_per_site() -> None:
    energy = pl.DataFrame([energy_row(20.0), {**energy_row(20.0), "site_id": "t"}])
    prices = pl.DataFrame({"site_id": ["s", "t"], "interval_start_s": [0, 0],
                           "price_usd_per_mwh": [Decimal("10"), Decimal("30")]})
    contracts = pl.DataFrame({"site_id": ["s", "t"], "start_s": [0, 0], "end_s": [900, 900],
                              "mw": [100.0, 100.0], "price_usd_per_mwh": [Decimal("0")] * 2})
    out = build_settlement(energy, prices, contracts)
    assert out["rt_sell_back_usd"].to_list() == [Decimal("50.00"), Decimal("150.00")]
    assert out["energy_reconciled"].to_list() == [None, None]  # energy_row has no flag


# ---------------------------------------------------------------- issue 23: POI gaps


def test_a_poi_gap_is_held_not_settled_as_zero() -> None:
    # 100 MW contract (25 MWh): settling the gap as 0 MWh would sell back all 25 MWh.
    gap = {**energy_row(0.0), "interval_start_s": 900, "poi_mwh": None, "poi_missing_s": 30.0}
    energy = pl.DataFrame([{**energy_row(20.0), "poi_missing_s": 0.0}, gap],
                          schema_overrides={"poi_mwh": pl.Float64})
    prices = pl.DataFrame({"interval_start_s": [0, 900],
                           "price_usd_per_mwh": [Decimal("50"), Decimal("50")]})
    contracts = pl.DataFrame({"site_id": ["s"], "start_s": [0], "end_s": [1800],
                              "mw": [100.0], "price_usd_per_mwh": [Decimal("40")]})
    out = build_settlement(energy, prices, contracts,
                           four_cp_intervals=pl.DataFrame({"interval_start_s": [900]}),
                           four_cp_rate_usd_per_kw_year=Decimal("5"), four_cp_method="12CP")
    ok, held = out.row(0, named=True), out.row(1, named=True)
    assert (ok["settled"], ok["held_reason"], ok["net_usd"]) == (True, None, Decimal("-750.00"))
    assert held["settled"] is False
    assert held["held_reason"].startswith("POI meter gap: 30 s")
    for c in ["sell_back_mwh", "purchase_mwh", "rt_sell_back_usd", "rt_purchase_usd",
              "four_cp_usd", "net_usd"]:
        assert held[c] is None, c
    assert held["forward_usd"] == Decimal("-1000.00")  # the contract is owed regardless
    # Totals over the mart cannot include a made-up zero: the held net is not summed in.
    assert out["net_usd"].null_count() == 1


def test_interval_energy_poi_gap_settles_on_the_estimate_and_a_sample_gap_is_held() -> None:
    from transforms.energy import interval_energy

    def settle(power: pl.DataFrame) -> dict[str, Any]:
        return build_settlement(
            interval_energy(power),
            pl.DataFrame({"interval_start_s": [0], "price_usd_per_mwh": [Decimal("9")]}),
            pl.DataFrame({"site_id": ["s"], "start_s": [0], "end_s": [900], "mw": [4.0],
                          "price_usd_per_mwh": [Decimal("1")]})).row(0, named=True)

    power = pl.DataFrame({"site_id": "s", "ts_s": list(range(900)), "ai_w": 3.6e6,
                          "mining_w": 0.0, "overhead_w": 0.0, "total_w": 3.6e6,
                          "poi_meter_w": [None if 10 <= k < 20 else 3.6e6 for k in range(900)],
                          "contract_w": 4e6, "hashrate_ths": 0.0})
    # The 10 silent seconds are estimated at 3.6 MW (AI, no overhead): 0.9 MWh drawn against
    # 1 MWh of contract, 0.1 MWh sold back at $9, the contract at $1: net -$0.10.
    est = settle(power)
    assert (est["settled"], est["poi_mwh"], est["rt_sell_back_usd"], est["net_usd"]) == (
        True, Decimal("0.900000"), Decimal("0.90"), Decimal("-0.10"))
    # Seconds with no sample at all cannot be estimated: held, never a zero.
    held = settle(power.filter(~pl.col("ts_s").is_between(10, 19)))
    assert (held["settled"], held["net_usd"], held["rt_sell_back_usd"]) == (False, None, None)
    assert "10 s" in held["held_reason"]


# ---------------------------------------------------------------- independent check, real price

RT_SPP = SHARED_DATA / "ercot_market" / "rt_spp" / "wattgap_rtm_spp_lz_2023-07_08.csv"


def test_one_real_interval_settled_by_hand() -> None:
    """2023-07-10 19:15 CDT, LZ_WEST at $3,951.47/MWh (ERCOT NP6-785-ER, the month's scarcity
    interval): 1 Hz telemetry through interval_energy and build_settlement, against plain
    Decimal arithmetic on the same inputs (DESIGN.md's settlement formulas)."""
    from datetime import datetime

    from transforms.energy import interval_energy

    stamp = "2023-07-10T19:15:00-05:00"
    with RT_SPP.open(newline="") as fh:
        price = Decimal(next(r for r in csv.DictReader(fh)
                             if r["interval_start_ct"] == stamp)["LZ_WEST"])
    assert price == Decimal("3951.47")
    start = int(datetime.fromisoformat(stamp).timestamp())
    poi_w = [180_000_000 + 1234 * k for k in range(900)]  # whole watts, one per second
    power = pl.DataFrame({"site_id": "s", "ts_s": list(range(start, start + 900)),
                          "ai_w": [w * 0.6 for w in poi_w], "mining_w": [w * 0.35 for w in poi_w],
                          "overhead_w": [w * 0.05 for w in poi_w],
                          "total_w": [float(w) for w in poi_w],
                          "poi_meter_w": [float(w) for w in poi_w],
                          "contract_w": 200e6, "hashrate_ths": 4e6})
    energy = interval_energy(power)
    got = build_settlement(
        energy, pl.DataFrame({"interval_start_s": [start], "price_usd_per_mwh": [price]}),
        pl.DataFrame({"site_id": ["s"], "start_s": [start - 3600], "end_s": [start + 3600],
                      "mw": [200.0], "price_usd_per_mwh": [Decimal("45.25")]}),
        hashprice=pl.DataFrame({"start_s": [start - 86400],
                                "hashprice_usd_per_ph_day": [Decimal("52.4")]}),
        credits=pl.DataFrame({"site_id": ["s"], "start_s": [start + 300],
                              "end_s": [start + 900], "kind": ["dr"], "mw": [20.0],
                              "price_usd_per_mw_h": [Decimal("100")]}),
    ).row(0, named=True)

    cent, six, nine = Decimal("0.01"), Decimal("0.000001"), Decimal("0.000000001")
    poi = (sum(Decimal(w) for w in poi_w) / Decimal(3_600_000_000)).quantize(six)
    forward = Decimal(200) * Decimal(900) / Decimal(3600)  # 50 MWh
    ph_days = (Decimal(4_000_000) / 1000 * 900 / 86400).quantize(nine)
    by_hand = {
        "forward_usd": -(forward * Decimal("45.25")),
        "rt_sell_back_usd": max(forward - poi, Decimal(0)) * price,
        "rt_purchase_usd": -max(poi - forward, Decimal(0)) * price,
        "mining_revenue_usd": ph_days * Decimal("52.4"),
        "dr_credit_usd": Decimal(20) * Decimal(600) / Decimal(3600) * Decimal(100),
        "ancillary_credit_usd": Decimal(0),
        "four_cp_usd": Decimal(0),
    }
    cents = {k: v.quantize(cent, rounding=ROUND_HALF_EVEN) for k, v in by_hand.items()}
    assert got["poi_mwh"] == poi == Decimal("45.138671")  # 180 MW + ramp, 1 Wh resolution
    assert {k: got[k] for k in cents} == cents
    assert got["net_usd"] == sum(cents.values(), Decimal(0))
    assert (got["settled"], got["energy_reconciled"]) == (True, True)
