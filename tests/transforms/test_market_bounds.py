"""Dated ERCOT price bounds (schemas.market_bounds) and the price contract that uses them."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from schemas.base import SCHEMA_VERSION
from schemas.grid import PriceSignal
from schemas.market_bounds import (
    STEPS,
    Market,
    bounds_on,
    price_problem,
    step_on,
    widest,
)
from schemas.registry import CONTRACTS
from schemas.validation import Limits, Rejection
from transforms import gates

CPT = ZoneInfo("America/Chicago")


def cpt_s(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=CPT).timestamp()


CASES: list[tuple[str, float, float, Market, bool]] = [
    # (why, price, interval start, market, accepted)
    ("Uri DAM, real, under the $9,000 cap", 8995.26, cpt_s(2021, 2, 16, 9), "DAM", True),
    ("DAM above the 2021 cap", 9500.0, cpt_s(2021, 2, 16, 9), "DAM", False),
    ("Uri RT at the $9,000 cap", 9000.0, cpt_s(2021, 2, 16, 9), "RTM", True),
    ("Sept 2023 LZ_WEST scarcity, above HCAP", 5339.52, cpt_s(2023, 9, 6, 19, 30), "RTM", True),
    ("Sept 2023 $5,300 RT", 5300.0, cpt_s(2023, 9, 6, 19, 15), "RTM", True),
    ("Sept 2023 RT x10: units error", 50_000.0, cpt_s(2023, 9, 6, 19, 30), "RTM", False),
    ("a value of 1e6", 1e6, cpt_s(2023, 9, 6), "SCED", False),
    ("RT below the offer floor by congestion", -251.0, cpt_s(2023, 7, 12, 10), "RTM", True),
    ("RT -$251 in $/kWh x 1000: units error", -251_000.0, cpt_s(2023, 7, 12, 10), "RTM", False),
    ("DAM $9,000 after the 2022 cut to $5,000", 9000.0, cpt_s(2022, 1, 1, 1), "DAM", False),
    ("DAM $9,000 the day before the cut", 9000.0, cpt_s(2021, 12, 31, 23), "DAM", True),
    ("DAM $7,000 in 2013 (HCAP $5,000)", 7000.0, cpt_s(2013, 7, 1), "DAM", False),
    ("RT $9,000 in 2014 via ORDC VOLL, HCAP $7,000", 9000.0, cpt_s(2014, 8, 1), "RTM", True),
    ("ordinary price", 31.5, cpt_s(2025, 7, 1), "RTM", True),
    ("AS MCPC of ECRS in July 2023", 993.65, cpt_s(2023, 7, 31, 19), "AS_MCPC", True),
    ("negative AS MCPC", -1.0, cpt_s(2023, 7, 31, 19), "AS_MCPC", False),
    ("NaN", float("nan"), cpt_s(2023, 7, 31), "RTM", False),
]


@pytest.mark.parametrize(("why", "price", "when_s", "market", "ok"), CASES,
                         ids=[c[0] for c in CASES])
def test_dated_bounds(why: str, price: float, when_s: float, market: Market, ok: bool) -> None:
    problem = price_problem(price, when_s, market)
    assert (problem is None) == ok, problem
    if not ok:
        assert problem is not None and (market in problem or "finite" in problem)


@pytest.mark.parametrize(
    ("day", "hcap"),
    [(date(2011, 8, 3), 3000.0), (date(2012, 7, 31), 3000.0), (date(2012, 8, 1), 4500.0),
     (date(2013, 6, 1), 5000.0), (date(2014, 6, 1), 7000.0), (date(2015, 5, 31), 7000.0),
     (date(2015, 6, 1), 9000.0), (date(2021, 12, 31), 9000.0), (date(2022, 1, 1), 5000.0),
     (date(2026, 9, 29), 5000.0)],
)
def test_hcap_steps(day: date, hcap: float) -> None:
    assert step_on(day).hcap_usd_per_mwh == hcap


def test_the_operating_day_is_central_time() -> None:
    # 2022-01-01 00:30 CST is 06:30 UTC; 2021-12-31 23:30 CST is 2022-01-01 05:30 UTC, still
    # the old $9,000 cap although the UTC date is already 2022.
    assert price_problem(8000.0, cpt_s(2021, 12, 31, 23, 30), "DAM") is None
    assert price_problem(8000.0, cpt_s(2022, 1, 1, 0, 30), "DAM") is not None


def test_an_impossible_time_is_a_reason_not_a_crash() -> None:
    problem = price_problem(30.0, 1e20, "RTM")
    assert problem is not None and "not a date" in problem


def test_steps_are_in_order_and_rt_is_never_tighter_than_dam() -> None:
    starts = [s.start for s in STEPS]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    for s in STEPS:
        assert bounds_on(s.start, "RTM").high >= bounds_on(s.start, "DAM").high


def test_the_mart_gate_price_range_is_the_widest_dated_range() -> None:
    assert gates._PRICE == widest()


def _signal(price: float, when_s: float, kind: str) -> bytes:
    return msgspec.json.encode(PriceSignal(
        v=SCHEMA_VERSION, market="ERCOT", settlement_point="LZ_WEST", kind=kind,  # type: ignore[arg-type]
        interval_start_s=when_s, interval_end_s=when_s + 900, price_usd_per_mwh=price))


@pytest.mark.parametrize(
    ("price", "kind", "ok"),
    [(8995.26, "da", True), (9500.0, "da", False), (9000.0, "rt", True), (50_000.0, "rt", False)],
)
def test_the_price_contract_uses_the_interval_date(price: float, kind: str, ok: bool) -> None:
    when = cpt_s(2021, 2, 16, 9)
    limits = Limits(now_s=when + 3600, max_age_s=1e10)
    decoded = CONTRACTS["grid.prices.v1"].decode(_signal(price, when, kind), limits)
    assert isinstance(decoded, PriceSignal) == ok, decoded
    if not ok:
        assert isinstance(decoded, Rejection) and decoded.kind == "validation"
