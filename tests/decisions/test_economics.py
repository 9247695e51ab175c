"""Mining economics as it moves: hashprice from network data, pool fee, cost adder, restart
premium, and the controller following the hashprice in force (never before it is known)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from schemas.grid import HashpriceSignal, PriceSignal
from streams.decisions.curtailment import ControllerInput, ControllerState, Tick, controller_step
from streams.decisions.economics import fleet_breakevens, network_hashprice
from streams.decisions.fleet import fleet_roster
from streams.replay.prices import read_hashprices

from .conftest import T0, make_site
from .helpers import power

COINMETRICS = (
    Path(__file__).resolve().parents[2]
    / "../shared/data/bitcoin_network/coinmetrics_btc_daily_2020-02-23_to_2020-03-29.csv"
)
BRAIINS = Path(__file__).resolve().parents[2] / "infra/data"


@pytest.mark.skipif(not COINMETRICS.exists(), reason="shared data not mounted")
def test_daily_hashprice_from_real_network_data() -> None:
    """Coin Metrics March 2020: difficulty x subsidy + fees x price equals the file's own
    (IssTotNtv + FeeTotNtv) x PriceUSD / HashRate for every day, and moves with the crash."""
    signals = read_hashprices(COINMETRICS, "coinmetrics_daily")
    rows = list(csv.DictReader(COINMETRICS.open()))
    assert len(signals) == len(rows) == 36
    for s, r in zip(signals, rows, strict=True):
        per_th_day = (
            (float(r["IssTotNtv"]) + float(r["FeeTotNtv"])) * float(r["PriceUSD"]) / float(
                r["HashRate"]
            )
        )
        assert s.usd_per_ph_day == pytest.approx(per_th_day * 1000, rel=1e-9), r["time"]
        assert s.published_s == s.ts_s + 86_400  # known once the day is counted
        assert s.subsidy_btc_per_block == pytest.approx(12.5)
    by_day = {r["time"]: s.usd_per_ph_day for r, s in zip(rows, signals, strict=True)}
    assert by_day["2020-03-11"] > 1.4 * by_day["2020-03-12"]  # the price crash
    assert min(by_day.values()) == pytest.approx(78, abs=1) and max(by_day.values()) > 160


def test_braiins_snapshot_is_its_own_hashprice() -> None:
    (s,) = read_hashprices(
        BRAIINS / "braiins_insights_hashrate-stats.json",
        "braiins_insights",
        BRAIINS / "braiins_insights_price-stats.json",
    )
    assert s.usd_per_ph_day == pytest.approx(39.0) and s.btc_price_usd == 89_316.0


def test_network_hashprice_by_hand() -> None:
    # Difficulty 2^32 x 1e12 / 86400 ... simpler: at difficulty D a PH/s finds
    # 86400e15 / (D 2^32) blocks a day; D = 86400e15 / 2^32 gives exactly one block.
    d = 86_400 * 10**15 / 2**32
    assert float(network_hashprice(d, 3.125, 0.125, 100_000)) == pytest.approx(325_000.0)


@pytest.mark.parametrize(
    ("policy", "s19_resume", "s19_curtail"),
    [
        ({}, 50.0, 50.0),
        # 2.5 % pool fee: 36 x 0.975 / 0.72 = 48.75.
        ({"pool_fee_fraction": 0.025}, 48.75, 48.75),
        # $5/MWh of site costs lower the breakeven by 5.
        ({"cost_adder_usd_per_mwh": 5.0}, 45.0, 45.0),
        # $10 per MW per restart over 2 h: curtail only $5/MWh above breakeven.
        ({"restart_cost_usd_per_mw": 10.0, "restart_amortize_h": 2.0}, 50.0, 55.0),
    ],
)
def test_breakeven_with_pool_fee_cost_adder_and_restart(
    policy: dict[str, float], s19_resume: float, s19_curtail: float
) -> None:
    site = make_site(**policy)
    be = fleet_breakevens(36.0, site.policy, fleet_roster(site))
    assert be.resume_below["S19"] == pytest.approx(s19_resume)
    assert be.curtail_above["S19"] == pytest.approx(s19_curtail)


def _price(published: int, usd: float) -> PriceSignal:
    return PriceSignal(
        market="ERCOT",
        settlement_point="LZ_WEST",
        kind="sced",
        interval_start_s=published - 600,
        interval_end_s=published - 300,
        price_usd_per_mwh=usd,
        published_s=published,
    )


def test_controller_uses_a_hashprice_only_from_its_publication() -> None:
    """$60/MWh curtails S19 at $36/PH/day (breakeven $50) but not at $72 (breakeven $100):
    a $72 hashprice sent early, published at T0 + 600, changes nothing before then."""
    site = make_site(economic_confirm_intervals=1)
    feed = HashpriceSignal(
        source="test", ts_s=T0, published_s=T0 + 600, usd_per_ph_day=72.0
    )
    inputs: list[ControllerInput] = [feed, power(T0), _price(T0, 60.0), Tick(ts_s=T0 + 1)]
    state, out = controller_step(ControllerState(site_id="s1"), inputs, site, fleet_roster(site))
    assert state.economic_models == ["S19"]
    (issued,) = out.events
    assert issued.hashprice_usd_per_ph_day == 36.0 and issued.hashprice_source == "policy"
    assert issued.breakeven_models == ["S19", "S21"]
    assert issued.breakeven_usd_per_mwh == [50.0, 100.0]
    state, out = controller_step(
        state, [Tick(ts_s=T0 + 600), _price(T0 + 600, 60.0)], site, fleet_roster(site)
    )
    assert state.economic_models == []
    (released,) = [e for e in out.events if e.kind == "released"]
    assert (released.hashprice_usd_per_ph_day, released.hashprice_published_s) == (72.0, T0 + 600)
    assert released.breakeven_usd_per_mwh == [100.0, 200.0]
