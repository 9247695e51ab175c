"""Mining revenue at the network hashprice in force (issue #23), not the policy constant.

The test site mines 1 PH/s; its config's policy hashprice is $50/PH/day.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.grid import HashpriceSignal
from streams.marts.publish import publish
from streams.marts.store import open_store
from tests.marts.helpers import rt_price, site_config
from tests.marts.test_publish import FakeGate
from tests.marts.test_settlement_mart import (
    DAY,
    Sink,
    _revisions,
    _seconds,
    _settlement,
    expected_interval,
)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    con = open_store(tmp_path / "sink.duckdb")
    yield Sink(con)
    con.close()


PRICES = [("grid.prices.v1", rt_price(DAY + k * 900, 42.5)) for k in range(2)]


def _hashprice(ts_s: float, usd: float) -> tuple[str, HashpriceSignal]:
    day = HashpriceSignal(
        source="coinmetrics", ts_s=ts_s, published_s=ts_s + 86_400.0, usd_per_ph_day=usd
    )
    return ("grid.hashprice.v1", day)


def test_each_interval_is_valued_at_the_hashprice_of_its_period(sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    feed = [_hashprice(DAY - 86_400.0, 40.0), _hashprice(DAY + 900.0, 62.0)]
    sink.write(_seconds(range(DAY, DAY + 1801)) + PRICES + feed, configs=[site_config("s")])
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2000)
    got = _settlement(marts)
    # The day before's value is in force at DAY (not the $50 policy), then DAY + 900's.
    for start, hashprice in [(DAY, Decimal(40)), (DAY + 900, Decimal(62))]:
        assert got[start]["hashprice_usd_per_ph_day"] == hashprice
        want = expected_interval(900, Decimal("42.5"), hashprice=hashprice)
        assert {k: got[start][k] for k in want} == want
    assert got[DAY]["mining_revenue_usd"] == Decimal("0.42")  # 900 s of 1 PH/s at $40/day


def test_policy_until_the_first_value_then_an_arriving_value_is_a_revision(
    sink: Sink, tmp_path: Path
) -> None:
    marts = tmp_path / "marts"
    sink.write(_seconds(range(DAY, DAY + 1801)) + PRICES, configs=[site_config("s")])
    publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2000)
    assert {s: r["hashprice_usd_per_ph_day"] for s, r in _settlement(marts).items()} == {
        DAY: Decimal(50),
        DAY + 900: Decimal(50),
    }
    sink.write([_hashprice(DAY + 900.0, 62.0)])  # published after the day had settled
    res = publish(sink.con, marts, gate=FakeGate(), now_s=DAY + 2100)
    got = _settlement(marts)
    assert got[DAY]["hashprice_usd_per_ph_day"] == Decimal(50)
    assert got[DAY + 900]["hashprice_usd_per_ph_day"] == Decimal(62)
    (rev,) = _revisions(marts)
    assert res.revisions == 1 and rev["key_start_s"] == DAY + 900
    changed = dict(zip(rev["changed_columns"], rev["new_values"], strict=True))
    assert changed["mining_revenue_usd"] == "0.65"  # 900/86400 PH-days x $62 = $0.6458
