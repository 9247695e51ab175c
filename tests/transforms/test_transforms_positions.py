"""Positions (issue 23, item 2) and 4CP by method (item 4), on real ERCOT prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
import pytest

from transforms.four_cp import (
    FourCpInputError,
    avoided_transmission_cost,
    check_cp_months,
    monthly_peak_intervals,
    peak_probability_windows,
    peak_risk_windows,
    read_posted_peaks,
)
from transforms.settlement import COMPONENTS, SettlementInputError, build_settlement
from transforms.sources import SHARED_DATA, read_ercot_rtm_spp_15min

RT_2025_07 = (SHARED_DATA / "ercot_rtm_spp_15min"
              / "ERCOT_RTM_SPP_hubs_loadzones_15min_2025-07-01_to_2025-07-03.csv")
FOUR_CP = SHARED_DATA / "ercot_market" / "events" / "kylejones_4CP_dates.csv"
DAY = int(datetime(2025, 7, 1, 5, tzinfo=UTC).timestamp())  # 2025-07-01 00:00 CDT


def real_day() -> tuple[pl.DataFrame, pl.DataFrame]:
    p = read_ercot_rtm_spp_15min(RT_2025_07).filter(
        pl.col("interval_start_s") >= DAY, pl.col("interval_start_s") < DAY + 86400)
    zone = p.filter(pl.col("settlement_point") == "LZ_WEST").select(
        "interval_start_s", "price_usd_per_mwh")
    return zone, p.select("settlement_point", "interval_start_s", "price_usd_per_mwh")


def site_day(poi_mw: float = 120.0) -> pl.DataFrame:
    mwh = poi_mw / 4
    return pl.DataFrame({"site_id": "s", "interval_start_s": [DAY + 900 * k for k in range(96)],
                         "ai_mwh": mwh / 2, "mining_mwh": mwh / 3, "overhead_mwh": mwh / 6,
                         "poi_mwh": mwh, "hashrate_ph_days": 0.0})


def test_hub_forward_and_day_ahead_settle_with_the_basis_as_its_own_column() -> None:
    zone, points = real_day()
    fwd = pl.DataFrame({"site_id": ["s"], "start_s": [DAY], "end_s": [DAY + 86400],
                        "mw": [100.0], "price_usd_per_mwh": [Decimal("41")],
                        "settlement_point": ["HB_WEST"]})
    da = pl.DataFrame({"site_id": "s", "hour_start_s": [DAY + 3600 * h for h in range(24)],
                       "settlement_point": "LZ_WEST", "mw": 10.0,
                       "price_usd_per_mwh": Decimal("50.25")})
    out = build_settlement(site_day(), zone, fwd, day_ahead=da, settlement_point="LZ_WEST",
                           point_prices=points)
    # Independent ledger per interval, in Decimal: 30 MWh metered, 25 forward at HB_WEST,
    # 2.5 DA at LZ_WEST: 2.5 MWh bought at LZ_WEST RT; 25 MWh x (HB_WEST - LZ_WEST).
    prices = {(r["settlement_point"], r["interval_start_s"]): Decimal(r["price_usd_per_mwh"])
              for r in points.iter_rows(named=True)}

    def c(x: Decimal) -> Decimal:
        return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)

    for r in out.iter_rows(named=True):
        t = r["interval_start_s"]
        lz, hub = prices[("LZ_WEST", t)], prices[("HB_WEST", t)]
        assert r["position_mwh"] == Decimal("27.5") and r["purchase_mwh"] == Decimal("2.5")
        assert r["rt_purchase_usd"] == c(-Decimal("2.5") * lz)
        assert r["basis_usd"] == c(Decimal(25) * (hub - lz))
        assert r["day_ahead_usd"] == c(-Decimal("2.5") * Decimal("50.25"))
        assert r["net_usd"] == sum((r[k] for k in COMPONENTS), Decimal(0))
    # LZ_WEST above HB_WEST on 2025-07-01 (West Texas congestion): the basis costs money.
    assert out["basis_usd"].sum() < 0


def test_contract_at_the_load_zone_has_no_basis_and_old_frames_still_settle() -> None:
    zone, _ = real_day()
    fwd = pl.DataFrame({"site_id": ["s"], "start_s": [DAY], "end_s": [DAY + 86400],
                        "mw": [100.0], "price_usd_per_mwh": [Decimal("41")]})
    out = build_settlement(site_day(), zone, fwd)
    assert set(out["basis_usd"].to_list()) == {Decimal(0)}
    assert set(out["day_ahead_usd"].to_list()) == {Decimal(0)}


def test_a_hub_position_needs_the_hub_price() -> None:
    zone, points = real_day()
    fwd = pl.DataFrame({"site_id": ["s"], "start_s": [DAY], "end_s": [DAY + 86400],
                        "mw": [100.0], "price_usd_per_mwh": [Decimal("41")],
                        "settlement_point": ["HB_NORTH"]})
    with pytest.raises(SettlementInputError, match="need settlement_point"):
        build_settlement(site_day(), zone, fwd)
    with pytest.raises(SettlementInputError, match="no RT price at 'HB_NORTH'"):
        build_settlement(site_day(), zone, fwd, settlement_point="LZ_WEST",
                         point_prices=points.filter(pl.col("settlement_point") != "HB_NORTH"))


# ---------------------------------------------------------------- 4CP


def test_posted_peaks_are_june_to_september_and_12cp_differs() -> None:
    peaks = read_posted_peaks(FOUR_CP)
    y2025 = peaks.filter(pl.col("interval_start_s") >= int(datetime(2025, 1, 1, tzinfo=UTC)
                                                           .timestamp()))
    assert y2025.height == 4
    check_cp_months(y2025, "4CP")
    may = pl.DataFrame({"interval_start_s": [int(datetime(2025, 5, 20, 22, tzinfo=UTC)
                                                 .timestamp())]})
    check_cp_months(may, "12CP")
    with pytest.raises(FourCpInputError, match="outside the 4CP months"):
        check_cp_months(may, "4CP")


def test_monthly_peak_and_risk_windows_come_from_load_not_a_list() -> None:
    # Two summer days and one May day of synthetic system load: the May peak is higher but
    # not a 4CP month.
    t = [DAY + 900 * k for k in range(192)]
    load = [60000.0 + (k % 96) * 100 for k in range(192)]
    load[150] = 80000.0  # the July peak, 2025-07-02 13:30 CDT
    may = int(datetime(2025, 5, 15, 22, tzinfo=UTC).timestamp())
    frame = pl.DataFrame({"interval_start_s": [*t, may], "load_mw": [*load, 90000.0]})
    peaks = monthly_peak_intervals(frame, "4CP")
    assert peaks.select("month", "interval_start_s").rows() == [(7, DAY + 900 * 150)]
    assert monthly_peak_intervals(frame, "12CP")["month"].to_list() == [5, 7]
    w = peak_risk_windows(frame.rename({"load_mw": "forecast_mw"}), margin_fraction=0.02)
    assert w.rows() == [(DAY + 900 * 150, DAY + 900 * 151)]
    w = peak_risk_windows(frame.rename({"load_mw": "forecast_mw"}), margin_fraction=0.14)
    assert w.rows() == [(DAY + 900 * 88, DAY + 900 * 96), (DAY + 900 * 150, DAY + 900 * 151),
                        (DAY + 900 * 184, DAY + 900 * 192)]
    prob = pl.DataFrame({"interval_start_s": t[:4], "peak_probability": [0.1, 0.6, 0.7, 0.2]})
    assert peak_probability_windows(prob).rows() == [(DAY + 900, DAY + 2700)]


def test_avoided_transmission_cost_per_year() -> None:
    peaks = read_posted_peaks(FOUR_CP).filter(
        pl.col("interval_start_s") >= int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()))
    # 30 MWh a peak interval metered (120 MW), 100 MWh without curtailment (400 MW).
    load = peaks.with_columns(poi_mwh=pl.lit(30.0), baseline_mwh=pl.lit(100.0))
    r = avoided_transmission_cost(load, peaks, Decimal("5.5")).row(0, named=True)
    assert (r["year"], r["peaks"]) == (2025, 4)
    assert r["tag_kw"] == Decimal(120000) and r["baseline_tag_kw"] == Decimal(400000)
    assert r["transmission_usd"] == Decimal("660000.00")
    assert r["avoided_usd"] == Decimal("1540000.00")  # 280,000 kW x $5.5/kW-yr
