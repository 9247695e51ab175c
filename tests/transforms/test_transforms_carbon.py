"""Carbon unit cases: factor table vs EIA avg_CI, matching, splits, marginal, errors."""

from __future__ import annotations

import csv

import polars as pl
import pytest

from transforms.carbon import (
    EMISSION_FACTORS,
    CarbonInputError,
    build_carbon_hourly,
    intensity_from_fuel_mix,
)
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
    assert got["intensity_g_per_kwh"].to_list() == pytest.approx(ref, abs=1e-6)


def test_fifteen_minute_mix_to_hourly_intensity() -> None:
    mix = read_ercot_fuel_mix_15min(MIX15)
    hourly = intensity_from_fuel_mix(mix)
    quarter = intensity_from_fuel_mix(mix, hourly=False)
    assert quarter.height == 4 * hourly.height == 31 * 96
    # Independent: one hour by hand from the 4 quarters' generation.
    h0 = hourly["interval_start_s"][0]
    q = mix.filter(pl.col("interval_start_s").is_between(h0, h0 + 2700))
    gen = {f: 0.0 for f in EMISSION_FACTORS}
    for fuel, mwh in zip(q["fuel"], q["generation_mwh"], strict=True):
        gen[fuel] += max(mwh, 0.0)
    ref = sum(gen[f] * EMISSION_FACTORS[f] for f in gen) / sum(gen.values())
    assert hourly["intensity_g_per_kwh"][0] == pytest.approx(ref, rel=1e-12)
    assert 100 < hourly["intensity_g_per_kwh"].mean() < 600  # type: ignore[operator]


def energy(ai: float, mining: float, overhead: float, hours: int = 1) -> pl.DataFrame:
    rows = [{"site_id": "s", "interval_start_s": 900 * k, "ai_mwh": ai / 4,
             "mining_mwh": mining / 4, "overhead_mwh": overhead / 4,
             "total_mwh": (ai + mining + overhead) / 4} for k in range(4 * hours)]
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
