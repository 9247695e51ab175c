"""Hourly carbon: location-based, market-based (hourly matched CFE) and marginal (avoided).

Consumption basis: ``total_mwh`` of ``interval_energy`` (AI + mining + overhead), summed to
UTC hours. Grams = MWh x 1000 kWh/MWh x gCO2/kWh.

Split between AI and mining: facility overhead is allocated to AI and mining pro rata to
their own energy in the hour (half each if both are zero), so ``ai_* + mining_* = total``.

- Location-based: grid average intensity of the hour, either published (Electricity Maps
  LCA or direct, EIA ``avg_CI``) or computed from the fuel mix with ``EMISSION_FACTORS``.
- Market-based: contracted carbon-free MWh of the hour are matched hour by hour up to the
  consumption (no banking across hours); the unmatched rest is charged at the residual-mix
  intensity when given, else at the location intensity (conservative: the grid average still
  contains the CFE sold to others). ``cfe_share`` = matched / consumption (24/7 CFE score).
- Marginal: curtailed MWh x marginal intensity (e.g. WattTime MOER) = avoided emissions;
  null where no marginal signal exists for the hour.
"""

from __future__ import annotations

import polars as pl

from transforms.calendar import hour_start_s

EMISSION_FACTORS: dict[str, float] = {
    "WND": 11.0,
    "SUN": 41.0,
    "WAT": 24.0,
    "NG": 490.0,
    "COL": 820.0,
    "NUC": 12.0,
    "OTH": 230.0,
    "OIL": 650.0,
}
"""Life-cycle emission factors, gCO2eq/kWh. IPCC AR5 WG3 Annex III (2014) medians: wind
onshore 11, utility solar PV 41, hydro 24, gas combined cycle 490, coal 820, nuclear 12,
biomass (dedicated) 230, used here for OTH. SOURCES.md shows these reproduce the EIA-derived
``avg_CI`` of ERCO 2022 by least squares. OIL has no IPCC AR5 median (it is always 0 in the
ERCOT data); 650 is the commonly cited oil-fired value and is an assumption."""

COLUMNS: dict[str, dict[str, str]] = {
    "grid_intensity": {
        "interval_start_s": "interval or hour start, UTC epoch seconds",
        "generation_mwh": "positive generation in the interval (negative OTH clipped), MWh",
        "intensity_g_per_kwh": "generation-weighted emission factor, gCO2eq/kWh",
    },
    "carbon_hourly": {
        "site_id": "site identifier",
        "hour_start_s": "hour start, UTC epoch seconds (key with site_id)",
        "ai_mwh": "AI energy in the hour, MWh",
        "mining_mwh": "mining energy in the hour, MWh",
        "overhead_mwh": "facility overhead energy in the hour, MWh",
        "total_mwh": "site consumption in the hour (ai + mining + overhead), MWh",
        "intensity_g_per_kwh": "grid average intensity used (location-based), gCO2eq/kWh",
        "location_g": "location-based emissions, total_mwh x intensity, gCO2eq",
        "ai_location_g": "location-based emissions of AI incl. its overhead share, gCO2eq",
        "mining_location_g": "location-based emissions of mining incl. overhead share, gCO2eq",
        "cfe_contracted_mwh": "carbon-free MWh contracted for the hour, MWh",
        "cfe_matched_mwh": "min(contracted CFE, total_mwh), MWh",
        "cfe_share": "cfe_matched_mwh / total_mwh (null when no consumption), fraction",
        "market_g": "market-based emissions: unmatched MWh x residual intensity, gCO2eq",
        "ai_market_g": "market-based emissions allocated to AI (pro rata energy), gCO2eq",
        "mining_market_g": "market-based emissions allocated to mining, gCO2eq",
        "curtailed_mwh": "mining energy curtailed in the hour, MWh",
        "marginal_g_per_kwh": "marginal intensity of the hour (null if none), gCO2eq/kWh",
        "avoided_g": "curtailed_mwh x marginal intensity (null if no signal), gCO2eq",
    },
}


class CarbonInputError(ValueError):
    """A carbon input is missing columns or hours."""


def _need(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CarbonInputError(f"{what}: missing column(s) {missing}; has {frame.columns}")


def intensity_from_fuel_mix(mix: pl.DataFrame, *, hourly: bool = True,
                            factors: dict[str, float] | None = None) -> pl.DataFrame:
    """Grid average intensity from a long fuel mix (``sources`` ``fuel_mix`` columns).

    Negative generation (net consumption, e.g. storage charging in OTH) is clipped to zero: it
    is not generation. ``hourly`` sums 15-minute intervals into UTC hours first. Returns
    ``COLUMNS["grid_intensity"]`` (key ``interval_start_s`` = hour start when hourly).
    """
    _need(mix, ["interval_start_s", "fuel", "generation_mwh"], "intensity_from_fuel_mix")
    table = factors or EMISSION_FACTORS
    unknown = set(mix["fuel"].unique()) - set(table)
    if unknown:
        raise CarbonInputError(f"intensity_from_fuel_mix: no emission factor for {unknown}")
    key = hour_start_s(pl.col("interval_start_s")) if hourly else pl.col("interval_start_s")
    gen = pl.col("generation_mwh").clip(lower_bound=0.0)
    f = pl.col("fuel").replace_strict(table, return_dtype=pl.Float64)
    return (
        mix.with_columns(key.alias("interval_start_s"))
        .group_by("interval_start_s")
        .agg(gen.sum().alias("generation_mwh"), (gen * f).sum().alias("_gf"))
        .with_columns((pl.col("_gf") / pl.col("generation_mwh")).alias("intensity_g_per_kwh"))
        .sort("interval_start_s")
        .select(list(COLUMNS["grid_intensity"]))
    )


def _split(total: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Allocate a site quantity to AI and mining pro rata to their own energy."""
    own = pl.col("ai_mwh") + pl.col("mining_mwh")
    ai_share = pl.when(own > 0).then(pl.col("ai_mwh") / own).otherwise(0.5)
    return total * ai_share, total * (1 - ai_share)


def build_carbon_hourly(energy: pl.DataFrame, intensity: pl.DataFrame, *,
                        intensity_col: str = "intensity_g_per_kwh",
                        cfe: pl.DataFrame | None = None,
                        residual_intensity: pl.DataFrame | None = None,
                        marginal: pl.DataFrame | None = None,
                        curtailed: pl.DataFrame | None = None) -> pl.DataFrame:
    """Hourly carbon per site.

    - ``energy``: ``transforms.energy.interval_energy`` output (15-minute, MWh).
    - ``intensity``: ``[hour_start_s, <intensity_col>]`` (e.g. ``ci_lca_g_per_kwh`` from
      ``sources.read_emaps_carbon_hourly``, or ``intensity_from_fuel_mix`` renamed); every
      hour with consumption must have one.
    - ``cfe``: ``[site_id, hour_start_s, cfe_mwh]`` contracted carbon-free energy.
    - ``residual_intensity``: ``[hour_start_s, residual_g_per_kwh]``.
    - ``marginal``: ``[hour_start_s, marginal_g_per_kwh]``.
    - ``curtailed``: ``[site_id, hour_start_s, curtailed_mwh]``.

    Returns ``COLUMNS["carbon_hourly"]``.
    """
    _need(energy, ["site_id", "interval_start_s", "ai_mwh", "mining_mwh", "overhead_mwh",
                   "total_mwh"], "build_carbon_hourly(energy)")
    _need(intensity, ["hour_start_s", intensity_col], "build_carbon_hourly(intensity)")
    uses = ["ai_mwh", "mining_mwh", "overhead_mwh", "total_mwh"]
    h = energy.with_columns(hour_start_s(pl.col("interval_start_s")).alias("hour_start_s")) \
        .group_by("site_id", "hour_start_s").agg(*(pl.col(c).sum() for c in uses))
    h = h.join(intensity.select("hour_start_s",
                                pl.col(intensity_col).cast(pl.Float64)
                                .alias("intensity_g_per_kwh")),
               on="hour_start_s", how="left")
    lost = h.filter(pl.col("intensity_g_per_kwh").is_null())
    if lost.height:
        raise CarbonInputError(f"build_carbon_hourly: no intensity for {lost.height} hour(s), "
                               f"first hour_start_s={lost['hour_start_s'].min()!r}")
    h = _optional(h, cfe, ["site_id", "hour_start_s"], "cfe_mwh", "cfe_contracted_mwh", 0.0)
    h = _optional(h, residual_intensity, ["hour_start_s"], "residual_g_per_kwh", "_resid", None)
    h = _optional(h, marginal, ["hour_start_s"], "marginal_g_per_kwh", "marginal_g_per_kwh",
                  None)
    h = _optional(h, curtailed, ["site_id", "hour_start_s"], "curtailed_mwh", "curtailed_mwh",
                  0.0)

    loc = pl.col("total_mwh") * 1000.0 * pl.col("intensity_g_per_kwh")
    matched = pl.min_horizontal(pl.col("cfe_contracted_mwh"), pl.col("total_mwh"))
    resid = pl.coalesce(pl.col("_resid"), pl.col("intensity_g_per_kwh"))
    h = h.with_columns(loc.alias("location_g"), matched.alias("cfe_matched_mwh"))
    market = (pl.col("total_mwh") - pl.col("cfe_matched_mwh")) * 1000.0 * resid
    h = h.with_columns(
        market.alias("market_g"),
        pl.when(pl.col("total_mwh") > 0)
        .then(pl.col("cfe_matched_mwh") / pl.col("total_mwh")).alias("cfe_share"),
        (pl.col("curtailed_mwh") * 1000.0 * pl.col("marginal_g_per_kwh")).alias("avoided_g"),
    )
    ai_loc, mining_loc = _split(pl.col("location_g"))
    ai_mkt, mining_mkt = _split(pl.col("market_g"))
    return h.with_columns(
        ai_loc.alias("ai_location_g"), mining_loc.alias("mining_location_g"),
        ai_mkt.alias("ai_market_g"), mining_mkt.alias("mining_market_g"),
    ).sort("site_id", "hour_start_s").select(list(COLUMNS["carbon_hourly"]))


def _optional(h: pl.DataFrame, frame: pl.DataFrame | None, keys: list[str], value: str,
              alias: str, fill: float | None) -> pl.DataFrame:
    if frame is None:
        return h.with_columns(pl.lit(fill, dtype=pl.Float64).alias(alias))
    _need(frame, [*keys, value], f"build_carbon_hourly({value})")
    if frame.select(keys).is_duplicated().any():
        raise CarbonInputError(f"build_carbon_hourly({value}): duplicate {keys}")
    j = h.join(frame.select(*keys, pl.col(value).cast(pl.Float64).alias(alias)), on=keys,
               how="left")
    return j.with_columns(pl.col(alias).fill_null(fill)) if fill is not None else j
