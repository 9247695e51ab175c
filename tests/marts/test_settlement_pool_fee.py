"""Mining revenue net of the pool fee, at the real network hashprice in force (issue #23).

The hashprice comes from Coin Metrics' daily network data of March 2020 (the crash), sent as
the replay sends it; the reference side recomputes it from the CSV with ``csv`` and
``decimal`` only (difficulty, subsidy, fees, price), as the mart stores it (6 places), and
values the PH-days at it less the fee of the config version in force.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest

from schemas.grid import HashpriceSignal
from schemas.site import CurtailmentPolicy, SiteConfig
from streams.marts.configs import contracts_of
from streams.marts.publish import publish
from streams.marts.settle import hashprice_days
from streams.marts.store import open_store
from streams.replay.prices import read_hashprices
from tests.marts.helpers import rt_price, site_config, site_second
from tests.marts.test_publish import FakeGate
from tests.marts.test_settlement_mart import Sink, _revisions, _settlement
from transforms.settlement import COMPONENTS, SettlementInputError, build_settlement
from transforms.sources import SHARED_DATA

COINMETRICS = SHARED_DATA / "bitcoin_network/coinmetrics_btc_daily_2020-02-23_to_2020-03-29.csv"
pytestmark = pytest.mark.skipif(not COINMETRICS.exists(), reason="shared data not mounted")

DAYS = [date(2020, 3, 11), date(2020, 3, 12), date(2020, 3, 13)]  # BTC -39 % on the 12th
THS = 2_856_960  # 50 MW of 17.5 J/TH miners, a multiple of 96: 29.76 PH-days per interval
CENT, SIX = Decimal("0.01"), Decimal("0.000001")


def _start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def reference_hashprice() -> dict[int, Decimal]:
    """Day start -> gross USD/PH/day = 86,400 x 1e15 / (difficulty x 2^32) x (subsidy +
    fees per block) x price, at the mart's 6 places."""
    out: dict[int, Decimal] = {}
    with localcontext() as ctx, COINMETRICS.open(newline="") as fh:
        ctx.prec = 50
        for r in csv.DictReader(fh):
            reward = (Decimal(r["IssTotNtv"]) + Decimal(r["FeeTotNtv"])) / Decimal(r["BlkCnt"])
            hp = Decimal(86_400 * 10**15) / (Decimal(r["DiffMean"]) * 2**32)
            hp = hp * reward * Decimal(r["PriceUSD"])
            day = date.fromisoformat(r["time"])
            out[_start(day)] = hp.quantize(SIX, rounding=ROUND_HALF_EVEN)
    return out


def _cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _config(fee: float, updated_s: float = 0.0) -> SiteConfig:
    policy = CurtailmentPolicy(hashprice_usd_per_ph_day=50.0, pool_fee_fraction=fee)
    return msgspec.structs.replace(site_config("s", updated_s=updated_s), policy=policy)


def _site_day(day: date) -> list[tuple[str, Any]]:
    """Two priced intervals of the site, mining ``THS`` throughout."""
    d = _start(day)
    power = [
        ("site.power.v1", msgspec.structs.replace(site_second("s", ts), hashrate_ths=float(THS)))
        for ts in range(d, d + 1801)
    ]
    return power + [("grid.prices.v1", rt_price(d + k * 900, 42.5)) for k in range(2)]


def _signals() -> dict[int, HashpriceSignal]:
    return {int(s.ts_s): s for s in read_hashprices(COINMETRICS, "coinmetrics_daily")}


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    con = open_store(tmp_path / "sink.duckdb")
    yield Sink(con)
    con.close()


NOW = _start(DAYS[-1]) + 2000


def test_mining_revenue_is_net_of_the_pool_fee_of_the_config_in_force(
    sink: Sink, tmp_path: Path
) -> None:
    """2.5 % until the second interval of the 12th, then 3 %: each interval at its own
    day's network hashprice, net of its own fee; the fee shown beside, outside net_usd."""
    marts = tmp_path / "marts"
    change = _start(DAYS[1]) + 900
    signals = _signals()
    items = [i for d in DAYS for i in _site_day(d)]
    items += [("grid.hashprice.v1", signals[_start(d)]) for d in DAYS]
    sink.write(items, configs=[_config(0.025), _config(0.03, updated_s=change)])
    publish(sink.con, marts, gate=FakeGate(), now_s=NOW)
    got = _settlement(marts)
    ref = reference_hashprice()
    ph_days = Decimal(THS) / 1000 * 900 / 86_400
    assert len(got) == 6
    for start, row in got.items():
        fee = Decimal("0.025") if start < change else Decimal("0.03")
        hp = ref[start - start % 86_400]
        gross = ph_days * hp
        assert (row["hashrate_ph_days"], row["hashprice_usd_per_ph_day"]) == (ph_days, hp)
        assert row["mining_revenue_usd"] == _cents(gross * (1 - fee)), start
        assert row["pool_fee_fraction"] == fee
        assert row["mining_revenue_usd"] + row["mining_pool_fee_usd"] == _cents(gross)
        assert row["net_usd"] == sum((row[c] for c in COMPONENTS), Decimal(0))
    # The crash day, first interval: 29.76 PH-days x $77.743133 = $2,313.64 gross (what
    # settlement paid before), $2,255.79 after the pool's 2.5 %.
    crash = got[_start(DAYS[1])]
    assert crash["hashprice_usd_per_ph_day"] == Decimal("77.743133")
    assert (crash["mining_revenue_usd"], crash["mining_pool_fee_usd"]) == (
        Decimal("2255.79"),
        Decimal("57.85"),
    )


def test_a_late_value_resettles_every_day_that_fell_back_on_the_older_one(
    sink: Sink, tmp_path: Path
) -> None:
    marts = tmp_path / "marts"
    signals, ref = _signals(), reference_hashprice()
    day0 = _start(date(2020, 3, 10))
    items = [i for d in DAYS for i in _site_day(d)] + [("grid.hashprice.v1", signals[day0])]
    sink.write(items, configs=[_config(0.025)])
    publish(sink.con, marts, gate=FakeGate(), now_s=NOW)
    assert {r["hashprice_usd_per_ph_day"] for r in _settlement(marts).values()} == {ref[day0]}

    # The 11th's value arrives late: in force on the 11th and, no later value being stored,
    # on the 12th and 13th too, which had fallen back on the 10th's.
    sink.write([("grid.hashprice.v1", signals[_start(DAYS[0])])])
    res = publish(sink.con, marts, gate=FakeGate(), now_s=NOW + 100)
    got = _settlement(marts)
    assert {r["hashprice_usd_per_ph_day"] for r in got.values()} == {ref[_start(DAYS[0])]}
    assert res.revisions == 6
    assert {r["key_start_s"] for r in _revisions(marts)} == set(got)

    # The 13th's value, late too: only the 13th changes (the 12th keeps the 11th's value).
    sink.write([("grid.hashprice.v1", signals[_start(DAYS[2])])])
    res = publish(sink.con, marts, gate=FakeGate(), now_s=NOW + 200)
    got = _settlement(marts)
    assert res.revisions == 2
    for start, row in got.items():
        day = start - start % 86_400
        want = ref[_start(DAYS[2])] if day == _start(DAYS[2]) else ref[_start(DAYS[0])]
        assert row["hashprice_usd_per_ph_day"] == want, start


def test_days_a_hashprice_value_is_in_force_on() -> None:
    d = [date(2020, 3, k) for k in range(10, 15)]
    starts = [_start(d[0]), _start(d[2]) + 3600.0, _start(d[4])]
    # The 10th's value: the 10th up to the 12th at 01:00 (the 12th's first hour used it).
    assert hashprice_days([_start(d[0])], starts, d) == {d[0], d[1], d[2]}
    # The 12th's: from its hour to the 14th's start.
    assert hashprice_days([_start(d[2]) + 3600], starts, d) == {d[2], d[3]}
    # The last stored value: every later day.
    assert hashprice_days([_start(d[4])], starts, d) == {d[4]}
    assert hashprice_days([_start(d[3])], [_start(d[3])], d) == {d[3], d[4]}
    assert hashprice_days([], starts, d) == set()


def _one_interval(ph_days: str, hashprice: str, fee: str) -> dict[str, Any]:
    energy = pl.DataFrame(
        {
            "site_id": ["s"],
            "interval_start_s": [0],
            "ai_mwh": [0.0],
            "mining_mwh": [1.0],
            "overhead_mwh": [0.0],
            "poi_mwh": [1.0],
            "hashrate_ph_days": [Decimal(ph_days)],
        },
        schema_overrides={"hashrate_ph_days": pl.Decimal(38, 9)},
    )
    prices = pl.DataFrame({"interval_start_s": [0], "price_usd_per_mwh": [Decimal(0)]})
    hp = pl.DataFrame({"start_s": [0], "hashprice_usd_per_ph_day": [Decimal(hashprice)]})
    no_contract = contracts_of("s", [])
    out = build_settlement(
        energy, prices, no_contract, hashprice=hp, pool_fee_fraction=Decimal(fee)
    )
    return out.row(0, named=True)


def test_the_fee_rule_is_exact_and_checked() -> None:
    # Net = 0.005000000000001 (15 places): cents round it up; 12 places would tie to 0.00.
    r = _one_interval("0.000000001", "5000000.000001", "0")
    assert (r["mining_revenue_usd"], r["mining_pool_fee_usd"]) == (Decimal("0.01"), 0)
    # 1 PH-day at $0.01 with a 50 % fee: net 0.005 ties to 0.00 (half-even), so the fee
    # shown is the whole cent and revenue + fee is still the gross.
    r = _one_interval("1", "0.01", "0.5")
    assert (r["mining_revenue_usd"], r["mining_pool_fee_usd"]) == (0, Decimal("0.01"))
    with pytest.raises(SettlementInputError, match="pool_fee_fraction"):
        _one_interval("1", "50", "1")
