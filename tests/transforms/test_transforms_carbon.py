"""Carbon unit cases: factor table vs EIA avg_CI, matching, splits, marginal, errors."""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from transforms.carbon import (
    DIRECT_EMISSION_FACTORS,
    LIFECYCLE_EMISSION_FACTORS,
    CarbonInputError,
    build_carbon_hourly,
    intensity_from_fuel_mix,
)
from transforms.settlement import build_settlement
from transforms.sources import SHARED_DATA, read_eia_fuel_mix_hourly, read_ercot_fuel_mix_15min

EIA = SHARED_DATA / "ercot_hourly_fuelmix_carbon_2022" / "ERCO_NG_avgCI_2022.csv"
MIX15 = SHARED_DATA / "ercot_fuel_mix_15min" / "IntGenByFuel202107.tsv"


def test_factor_table_reproduces_eia_avg_ci() -> None:
    """SOURCES.md: avg_CI = sum(share x factor) with the IPCC medians. Check all 8760 hours
    against the file's own avg_CI column, parsed here with csv."""
    with EIA.open(newline="") as fh:
        ref = [float(r["avg_CI"]) for r in csv.DictReader(fh)]
    got = intensity_from_fuel_mix(read_eia_fuel_mix_hourly(EIA))
    assert got.height == 8760
    # avg_CI is a life-cycle figure: it matches the life-cycle column, not the Scope 2 one.
    assert got["lifecycle_g_per_kwh"].to_list() == pytest.approx(ref, abs=1e-6)
    assert (got["intensity_g_per_kwh"] < got["lifecycle_g_per_kwh"]).all()


def test_fifteen_minute_mix_to_hourly_intensity() -> None:
    mix = read_ercot_fuel_mix_15min(MIX15)
    hourly = intensity_from_fuel_mix(mix)
    quarter = intensity_from_fuel_mix(mix, hourly=False)
    assert quarter.height == 4 * hourly.height == 31 * 96
    # Independent: one hour by hand from the 4 quarters' generation.
    h0 = hourly["interval_start_s"][0]
    q = mix.filter(pl.col("interval_start_s").is_between(h0, h0 + 2700))
    gen = {f: 0.0 for f in DIRECT_EMISSION_FACTORS}
    for fuel, mwh in zip(q["fuel"], q["generation_mwh"], strict=True):
        gen[fuel] += max(mwh, 0.0)
    for col, table in [("intensity_g_per_kwh", DIRECT_EMISSION_FACTORS),
                       ("lifecycle_g_per_kwh", LIFECYCLE_EMISSION_FACTORS)]:
        ref = sum(gen[f] * table[f] for f in gen) / sum(gen.values())
        assert hourly[col][0] == pytest.approx(ref, rel=1e-12)
    assert 100 < hourly["intensity_g_per_kwh"].mean() < 600  # type: ignore[operator]


def energy(ai: float, mining: float, overhead: float, hours: int = 1,
           poi: float | None = None) -> pl.DataFrame:
    total = ai + mining + overhead
    rows = [{"site_id": "s", "interval_start_s": 900 * k, "ai_mwh": ai / 4,
             "mining_mwh": mining / 4, "overhead_mwh": overhead / 4,
             "total_mwh": total / 4, "poi_mwh": (total if poi is None else poi) / 4,
             "hashrate_ph_days": 0.0} for k in range(4 * hours)]
    return pl.DataFrame(rows)


@pytest.mark.parametrize(
    ("ai", "mining", "overhead", "cfe", "loc", "ai_loc", "market", "share"),
    [
        # 100 MWh at 400 g/kWh = 40 t; overhead 10 split 60/30.
        (60.0, 30.0, 10.0, 0.0, 40e6, 40e6 * 60 / 90, 40e6, 0.0),
        (60.0, 30.0, 10.0, 25.0, 40e6, 40e6 * 60 / 90, 30e6, 0.25),
        (60.0, 30.0, 10.0, 150.0, 40e6, 40e6 * 60 / 90, 0.0, 1.0),  # excess CFE not banked
        (0.0, 0.0, 10.0, 0.0, 4e6, 2e6, 4e6, 0.0),  # overhead only: split half/half
    ],
)
def test_location_market_and_split(ai: float, mining: float, overhead: float, cfe: float,
                                   loc: float, ai_loc: float, market: float,
                                   share: float) -> None:
    out = build_carbon_hourly(
        energy(ai, mining, overhead), pl.DataFrame({"hour_start_s": [0], "ci": [400.0]}),
        intensity_col="ci",
        cfe=pl.DataFrame({"site_id": ["s"], "hour_start_s": [0], "cfe_mwh": [cfe]}),
    ).row(0, named=True)
    assert out["location_g"] == pytest.approx(loc)
    assert out["ai_location_g"] == pytest.approx(ai_loc)
    assert out["ai_location_g"] + out["mining_location_g"] == pytest.approx(loc)
    assert out["market_g"] == pytest.approx(market)
    assert out["cfe_share"] == pytest.approx(share)


def test_residual_mix_and_marginal() -> None:
    out = build_carbon_hourly(
        energy(50.0, 50.0, 0.0, hours=2),
        pl.DataFrame({"hour_start_s": [0, 3600], "ci": [400.0, 300.0]}), intensity_col="ci",
        cfe=pl.DataFrame({"site_id": ["s"], "hour_start_s": [0], "cfe_mwh": [40.0]}),
        residual_intensity=pl.DataFrame({"hour_start_s": [0], "residual_g_per_kwh": [450.0]}),
        marginal=pl.DataFrame({"hour_start_s": [3600], "marginal_g_per_kwh": [700.0]}),
        curtailed=pl.DataFrame({"site_id": ["s", "s"], "hour_start_s": [0, 3600],
                                "curtailed_mwh": [5.0, 8.0]}),
    )
    h0, h1 = out.row(0, named=True), out.row(1, named=True)
    assert h0["market_g"] == pytest.approx(60 * 1000 * 450.0)  # residual mix where given
    assert h1["market_g"] == pytest.approx(100 * 1000 * 300.0)  # else grid average
    assert (h0["market_basis"], h1["market_basis"]) == ("residual_mix", "grid_average")
    assert h0["avoided_g"] is None  # no marginal signal that hour
    assert h1["avoided_g"] == pytest.approx(8 * 1000 * 700.0)


def test_errors() -> None:
    with pytest.raises(CarbonInputError, match="no intensity for 1 hour"):
        build_carbon_hourly(energy(1, 1, 1), pl.DataFrame({"hour_start_s": [3600], "ci": [1.0]}),
                            intensity_col="ci")
    with pytest.raises(CarbonInputError, match=r"missing column\(s\) \['ci'\]"):
        build_carbon_hourly(energy(1, 1, 1), pl.DataFrame({"hour_start_s": [0]}),
                            intensity_col="ci")
    with pytest.raises(CarbonInputError, match="no emission factor"):
        intensity_from_fuel_mix(pl.DataFrame({"interval_start_s": [0], "fuel": ["FUSION"],
                                              "generation_mwh": [1.0]}))


# ---------------------------------------------------------------- issue 23: Scope 2 basis


def test_location_based_is_combustion_and_life_cycle_is_kept_apart() -> None:
    # One hour of gas only: combustion 370 g/kWh, life cycle 490 (IPCC AR5 Annex III).
    mix = pl.DataFrame({"interval_start_s": [0, 900], "fuel": ["NG", "NG"],
                        "generation_mwh": [10.0, 10.0]})
    grid = intensity_from_fuel_mix(mix).rename({"interval_start_s": "hour_start_s"})
    assert grid.select("intensity_g_per_kwh", "lifecycle_g_per_kwh").row(0) == (370.0, 490.0)
    out = build_carbon_hourly(energy(60.0, 30.0, 10.0), grid,
                              lifecycle_col="lifecycle_g_per_kwh").row(0, named=True)
    assert out["location_g"] == pytest.approx(100 * 1000 * 370.0)
    assert out["location_lifecycle_g"] == pytest.approx(100 * 1000 * 490.0)
    assert out["ai_location_g"] + out["mining_location_g"] == pytest.approx(out["location_g"])


def test_market_based_differs_with_instruments_and_says_its_fallback() -> None:
    ci = pl.DataFrame({"hour_start_s": [0, 3600], "ci": [400.0, 400.0]})
    cfe = pl.DataFrame({"site_id": ["s"], "hour_start_s": [0], "cfe_mwh": [30.0]})
    out = build_carbon_hourly(energy(60.0, 30.0, 10.0, hours=2), ci, intensity_col="ci",
                              cfe=cfe)
    h0, h1 = out.row(0, named=True), out.row(1, named=True)
    assert h0["market_g"] == pytest.approx(70 * 1000 * 400.0)
    assert h0["market_g"] < h0["location_g"]
    # No instrument and no residual mix: the grid average, flagged as such.
    assert (h1["market_g"], h1["market_basis"]) == (h1["location_g"], "grid_average")
    resid = build_carbon_hourly(
        energy(60.0, 30.0, 10.0), ci.head(1), intensity_col="ci",
        residual_intensity=pl.DataFrame({"hour_start_s": [0], "residual_g_per_kwh": [430.0]}),
    ).row(0, named=True)
    assert resid["market_basis"] == "residual_mix"
    assert resid["market_g"] == pytest.approx(100 * 1000 * 430.0)
    assert resid["market_g"] != resid["location_g"]


def test_carbon_basis_is_the_poi_meter_settlement_settles() -> None:
    # Device sums 100 MWh, revenue meter 104 MWh (losses): both marts use the 104.
    e = energy(60.0, 30.0, 10.0, poi=104.0)
    out = build_carbon_hourly(e, pl.DataFrame({"hour_start_s": [0], "ci": [400.0]}),
                              intensity_col="ci").row(0, named=True)
    settled = build_settlement(
        e, e.select("interval_start_s", price_usd_per_mwh=pl.lit(Decimal("20"))),
        pl.DataFrame({"site_id": ["s"], "start_s": [0], "end_s": [3600], "mw": [100.0],
                      "price_usd_per_mwh": [Decimal("30")]}))
    assert Decimal(str(out["poi_mwh"])) == settled["poi_mwh"].sum() == Decimal("104")
    assert out["location_g"] == pytest.approx(104 * 1000 * 400.0)
    # AI and mining pro rata to their own energy (60:30), overhead and losses included.
    assert out["ai_location_g"] == pytest.approx(out["location_g"] * 2 / 3)
    assert out["mining_location_g"] == pytest.approx(out["location_g"] / 3)


def test_an_hour_with_a_poi_gap_has_no_emissions_rather_than_fewer() -> None:
    e = energy(60.0, 30.0, 10.0).with_columns(
        pl.when(pl.col("interval_start_s") == 900).then(None).otherwise(pl.col("poi_mwh"))
        .alias("poi_mwh"))
    out: dict[str, Any] = build_carbon_hourly(
        e, pl.DataFrame({"hour_start_s": [0], "ci": [400.0]}), intensity_col="ci",
    ).row(0, named=True)
    assert (out["poi_mwh"], out["location_g"], out["market_g"]) == (None, None, None)
