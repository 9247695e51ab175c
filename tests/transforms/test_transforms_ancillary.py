"""Ancillary services as a Load Resource, money side (issue 23, item 3): capacity paid for
every awarded hour at the real MCPC, failure to provide, deployment performance, ERS."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import polars as pl
import pytest

from streams.collectors.grid_feeds import read_as_mcpc
from transforms.ancillary import (
    AncillaryInputError,
    by_interval,
    capacity_by_hour,
    deployment_performance,
    ers_payment,
    ers_time_period_hours,
    failure_by_hour,
    hourly_mcpc,
    read_awards_csv,
)
from transforms.sources import SHARED_DATA

MCPC_2023_07 = SHARED_DATA / "ercot_market" / "as_mcpc" / "as_mcpc_2023_07.csv"
DAY = int(datetime(2023, 7, 31, 5, tzinfo=UTC).timestamp())  # 2023-07-31 00:00 CDT


def mcpc_frame(path: Path) -> pl.DataFrame:
    rows = read_as_mcpc(path)
    return pl.DataFrame({
        "market": [r.market for r in rows], "service": [r.service for r in rows],
        "interval_start_s": [int(r.interval_start_s) for r in rows],
        "interval_end_s": [int(r.interval_end_s) for r in rows],
        "mcpc_usd_per_mw_h": [r.mcpc_usd_per_mw_h for r in rows]},
        schema_overrides={"mcpc_usd_per_mw_h": pl.Decimal(38, 6)})


def schedule() -> list[tuple[str, int, str]]:
    """RRS 12.345 MW all day, ECRS 30.5 MW HE17-HE21 (the evening peak), NSPIN 7.125 MW
    overnight: every awarded hour is paid, deployed or not."""
    out = [("RRS", DAY + h * 3600, "12.345") for h in range(24)]
    out += [("ECRS", DAY + h * 3600, "30.5") for h in range(16, 21)]
    out += [("NSPIN", DAY + h * 3600, "7.125") for h in range(6)]
    return out


def test_capacity_revenue_of_a_real_mcpc_file_equals_an_independent_decimal_ledger(
        tmp_path: Path) -> None:
    awards_file = tmp_path / "awards.csv"
    with awards_file.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["site_id", "service", "market", "hour_start_s", "mw"])
        w.writerows(["s", svc, "DAM", start, mw] for svc, start, mw in schedule())
    # Independent ledger: the file's rows read with csv and Decimal, nothing shared.
    names = {"RRS": "RRS", "ECRS": "ECRS", "NSPIN": "NONSPIN"}
    price: dict[tuple[str, int], Decimal] = {}
    with MCPC_2023_07.open(newline="") as fh:
        for r in csv.DictReader(fh):
            start = int(datetime.fromisoformat(r["interval_start_utc"]).timestamp())
            price[(r["product"], start)] = Decimal(r["price"])
    per_hour = [(Decimal(mw) * price[(names[svc], start)]).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_EVEN) for svc, start, mw in schedule()]
    expected = sum(per_hour, Decimal(0))

    cap = capacity_by_hour(read_awards_csv(awards_file), hourly_mcpc(mcpc_frame(MCPC_2023_07)))
    assert cap["capacity_usd"].to_list() == [
        p for (_, _, _), p in sorted(zip(schedule(), per_hour, strict=True),
                                     key=lambda t: (t[0][1], t[0][0]))]
    assert cap["capacity_usd"].sum() == expected
    intervals = by_interval(cap)
    assert intervals.height == 24 * 4 and intervals["capacity_usd"].sum() == expected
    # ECRS cleared at $993.65 at HE20 on 7/31 (SOURCES.md): 30.5 MW earn $30,306.325 that
    # hour, exactly half a cent: half-even keeps the even cent.
    he20 = cap.filter(pl.col("service") == "ECRS", pl.col("hour_start_s") == DAY + 19 * 3600)
    assert he20["capacity_usd"].to_list() == [Decimal("30306.32")]


def test_an_award_without_a_clearing_price_is_an_error_not_zero() -> None:
    awards = pl.DataFrame({"site_id": ["s"], "service": ["ECRS"], "market": ["RTM"],
                           "hour_start_s": [DAY], "mw": [1.0],
                           "clearing_price_usd_per_mw": [None]},
                          schema_overrides={"clearing_price_usd_per_mw": pl.Decimal(38, 6)})
    with pytest.raises(AncillaryInputError, match="no clearing price"):
        capacity_by_hour(awards, hourly_mcpc(mcpc_frame(MCPC_2023_07)))


def test_rt_mcpc_hour_is_the_mean_of_its_four_intervals() -> None:
    mcpc = pl.DataFrame({"market": ["rt"] * 4, "service": ["RRS"] * 4,
                         "interval_start_s": [DAY + 900 * k for k in range(4)],
                         "interval_end_s": [DAY + 900 * (k + 1) for k in range(4)],
                         "mcpc_usd_per_mw_h": [Decimal(x) for x in ("1", "2", "3", "4.01")]})
    h = hourly_mcpc(mcpc)
    assert h.row(0, named=True)["mcpc_usd_per_mw_h"] == Decimal("2.5025")
    assert h["market"].to_list() == ["RTM"]


@pytest.mark.parametrize(("provided", "failed", "charge"), [
    (50.0, {"RRS": "0", "NSPIN": "0"}, "0.00"),       # load covers both awards
    (25.0, {"RRS": "0", "NSPIN": "5"}, "50.00"),      # 5 MW short: NSPIN fails first
    (10.0, {"RRS": "10", "NSPIN": "10"}, "200.00"),   # RRS 10 MW short, NSPIN 10: 20 x $10
])
def test_failure_to_provide(provided: float, failed: dict[str, str], charge: str) -> None:
    awards = pl.DataFrame({"site_id": ["s", "s"], "service": ["RRS", "NSPIN"],
                           "market": ["DAM", "DAM"], "hour_start_s": [DAY, DAY],
                           "mw": [20.0, 10.0],
                           "clearing_price_usd_per_mw": [Decimal("10"), Decimal("10")]})
    cap = capacity_by_hour(awards, None)
    f = failure_by_hour(cap, pl.DataFrame({"site_id": ["s"], "hour_start_s": [DAY],
                                           "provided_mw": [provided]}))
    assert {r["service"]: f"{r['failed_mw'].normalize():f}" for r in f.iter_rows(named=True)} \
        == failed
    assert f["failure_usd"].sum() == Decimal(charge)


def test_hour_cents_split_over_intervals_add_up() -> None:
    hourly = pl.DataFrame({"site_id": ["s"], "hour_start_s": [DAY],
                           "capacity_usd": [Decimal("10.03")],
                           "failure_usd": [Decimal("0.01")]},
                          schema_overrides={"capacity_usd": pl.Decimal(38, 2),
                                            "failure_usd": pl.Decimal(38, 2)})
    out = by_interval(hourly)
    assert out["capacity_usd"].to_list() == [Decimal("2.51")] * 3 + [Decimal("2.50")]
    assert out["failure_usd"].sum() == Decimal("0.01")


def test_deployment_performance_against_baseline() -> None:
    energy = pl.DataFrame({"site_id": "s", "interval_start_s": [DAY - 900, DAY, DAY + 900],
                           "mining_mwh": [25.0, 15.0, 17.5]})  # 100 MW, then 60 and 70
    d = pl.DataFrame({"site_id": ["s"], "event_id": ["e1"], "start_s": [DAY],
                      "end_s": [DAY + 1800], "instructed_mw": [40.0]})
    r = deployment_performance(d, energy).row(0, named=True)
    assert (r["baseline_mw"], r["deployed_mw"], r["delivered_mw"]) == (100.0, 65.0, 35.0)
    assert r["performance"] == pytest.approx(0.875)


def test_ers_time_period_and_payment() -> None:
    # Business hours 8-13, weekdays, June 2025 (21 weekdays, Juneteenth an ERCOT holiday).
    hours = ers_time_period_hours(date(2025, 6, 1), date(2025, 6, 30), 8, 13,
                                  weekdays_only=True, holidays=frozenset({date(2025, 6, 19)}))
    assert hours == 20 * 5
    assert ers_payment(Decimal("10"), Decimal("7.5"), hours,
                       availability_factor=Decimal("0.95"),
                       event_performance_factor=Decimal("0.8")) == Decimal("5700.00")
    # Spring-forward day: 24 clock hours of a full-day period are 23 real ones.
    assert ers_time_period_hours(date(2025, 3, 9), date(2025, 3, 9), 0, 24,
                                 weekdays_only=False) == 23
    with pytest.raises(AncillaryInputError, match="availability_factor"):
        ers_payment(Decimal(1), Decimal(1), 1, availability_factor=Decimal("1.2"))
