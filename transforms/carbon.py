"""Hourly carbon (GHG Protocol Scope 2 Guidance, 2015): location-based, market-based (hourly
matched CFE) and marginal (avoided).

Energy basis: ``poi_mwh`` of ``interval_energy``, the revenue (POI) meter that settlement
settles, summed to UTC hours, so carbon and settlement reconcile to the same MWh. An hour with
a POI gap has no basis: its emissions are null (never computed on a zero). Grams = MWh x
1000 kWh/MWh x gCO2/kWh.

Split between AI and mining: the hour's emissions (overhead and meter losses included) are
allocated pro rata to AI's and mining's own energy (half each if both are zero), so
``ai_* + mining_* = total``.

- Location-based: grid average *combustion* (direct) intensity of the hour: Scope 2 counts
  the emissions of generating the electricity (Guidance ch. 6.2 and 6.5; upstream fuel
  life-cycle emissions belong to Scope 3 category 3). Either published (Electricity Maps
  ``direct``, EIA) or computed from the fuel mix with ``DIRECT_EMISSION_FACTORS``. Life-cycle
  factors (``LIFECYCLE_EMISSION_FACTORS``, Electricity Maps ``LCA``) are kept apart, in
  ``location_lifecycle_g``, never mixed into ``location_g``.
- Market-based: contracted carbon-free MWh (EACs, PPAs) of the hour are matched hour by hour
  up to the consumption (no banking across hours); the unmatched rest is charged at the
  residual-mix intensity when given. Without a residual mix the Guidance's hierarchy (Table
  6.3, emission factor hierarchy; Scope 2 Quality Criteria) falls back to the grid average,
  which ``market_basis`` says (``grid_average``), since it double counts the CFE sold to
  others. ``cfe_share`` = matched / consumption (24/7 CFE score).
- Marginal: curtailed MWh x marginal intensity (e.g. WattTime MOER) = avoided emissions;
  null where no marginal signal exists for the hour.
"""

from __future__ import annotations

import polars as pl

from streams.errors import TerminalError
from transforms.calendar import hour_start_s

LIFECYCLE_EMISSION_FACTORS: dict[str, float] = {
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
ERCOT data); 650 is the commonly cited oil-fired value (UK POST) and is an assumption."""

DIRECT_EMISSION_FACTORS: dict[str, float] = {
    "WND": 0.0,
    "SUN": 0.0,
    "WAT": 0.0,
    "NUC": 0.0,
    "NG": 370.0,
    "COL": 760.0,
    "OTH": 0.0,
    "OIL": 406.0,
}
"""Combustion (direct) emission factors, gCO2eq/kWh, the location-based Scope 2 basis. IPCC
AR5 WG3 Annex III (2014) Table A.III.2 direct-emission medians: coal 760, gas combined cycle
370; wind, solar, hydro and nuclear emit nothing at the plant. OIL 406 is Electricity Maps'
default direct factor (EIA 2020 / BEIS 2021 blend; always 0 MWh in the ERCOT data). OTH is
treated as biomass, as for the life-cycle table: its combustion CO2 is biogenic, which the
GHG Protocol reports outside the scopes (Electricity Maps' direct default for biomass is 0,
BEIS 2021). These values were taken from the electricitymaps-contrib ``config/defaults.yaml``
(which cites IPCC 2014) and could not be checked against the Annex III PDF here."""

EMISSION_FACTORS = LIFECYCLE_EMISSION_FACTORS
"""Former name of the life-cycle table (kept for callers that read it)."""

COLUMNS: dict[str, dict[str, str]] = {
    "grid_intensity": {
        "interval_start_s": "interval or hour start, UTC epoch seconds",
        "generation_mwh": "positive generation in the interval (negative OTH clipped), MWh",
        "intensity_g_per_kwh": "generation-weighted combustion (direct) emission factor, "
                               "gCO2eq/kWh",
        "lifecycle_g_per_kwh": "generation-weighted life-cycle emission factor, gCO2eq/kWh",
    },
    "carbon_hourly": {
        "site_id": "site identifier",
        "hour_start_s": "hour start, UTC epoch seconds (key with site_id)",
        "ai_mwh": "AI energy in the hour, MWh",
        "mining_mwh": "mining energy in the hour, MWh",
        "overhead_mwh": "facility overhead energy in the hour, MWh",
        "total_mwh": "sum of the uses in the hour (ai + mining + overhead), MWh",
        "poi_mwh": "revenue (POI) meter energy in the hour, the carbon and settlement basis "
                   "(null when the meter has a gap in the hour), MWh",
        "intensity_g_per_kwh": "grid average combustion (direct) intensity (location-based), "
                               "gCO2eq/kWh",
        "location_g": "location-based emissions, poi_mwh x direct intensity, gCO2eq",
        "ai_location_g": "location-based emissions of AI incl. its overhead share, gCO2eq",
        "mining_location_g": "location-based emissions of mining incl. overhead share, gCO2eq",
        "cfe_contracted_mwh": "carbon-free MWh contracted for the hour, MWh",
        "lifecycle_g_per_kwh": "grid average life-cycle intensity, kept apart (null if not "
                               "given), gCO2eq/kWh",
        "location_lifecycle_g": "poi_mwh x life-cycle intensity, NOT Scope 2 (null if not "
                                "given), gCO2eq",
        "cfe_matched_mwh": "min(contracted CFE, poi_mwh), MWh",
        "cfe_share": "cfe_matched_mwh / poi_mwh (null when no consumption), fraction",
        "market_basis": "factor for unmatched MWh (code): residual_mix, or grid_average "
                        "where no residual mix is given (Scope 2 Guidance Table 6.3)",
        "market_g": "market-based emissions: unmatched MWh x residual (or grid average) "
                    "intensity, gCO2eq",
        "ai_market_g": "market-based emissions allocated to AI (pro rata energy), gCO2eq",
        "mining_market_g": "market-based emissions allocated to mining, gCO2eq",
        "curtailed_mwh": "mining energy curtailed in the hour, MWh",
        "marginal_g_per_kwh": "marginal intensity of the hour (null if none), gCO2eq/kWh",
        "avoided_g": "curtailed_mwh x marginal intensity (null if no signal), gCO2eq",
    },
}


class CarbonInputError(TerminalError, ValueError):
    """A carbon input is missing columns or hours."""


def _need(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CarbonInputError(f"{what}: missing column(s) {missing}; has {frame.columns}")


def intensity_from_fuel_mix(mix: pl.DataFrame, *, hourly: bool = True,
                            factors: dict[str, float] | None = None,
                            lifecycle: dict[str, float] | None = None) -> pl.DataFrame:
    """Grid average intensity from a long fuel mix (``sources`` ``fuel_mix`` columns):
    combustion (``factors``, default ``DIRECT_EMISSION_FACTORS``) and, apart, life-cycle
    (``lifecycle``, default ``LIFECYCLE_EMISSION_FACTORS``).

    Negative generation (net consumption, e.g. storage charging in OTH) is clipped to zero: it
    is not generation. ``hourly`` sums 15-minute intervals into UTC hours first. Returns
    ``COLUMNS["grid_intensity"]`` (key ``interval_start_s`` = hour start when hourly).
    """
    _need(mix, ["interval_start_s", "fuel", "generation_mwh"], "intensity_from_fuel_mix")
    direct = factors or DIRECT_EMISSION_FACTORS
    life = lifecycle or LIFECYCLE_EMISSION_FACTORS
    unknown = set(mix["fuel"].unique()) - (set(direct) & set(life))
    if unknown:
        raise CarbonInputError(f"intensity_from_fuel_mix: no emission factor for {unknown}")
    key = hour_start_s(pl.col("interval_start_s")) if hourly else pl.col("interval_start_s")
    gen = pl.col("generation_mwh").clip(lower_bound=0.0)
    fd = pl.col("fuel").replace_strict(direct, return_dtype=pl.Float64)
    fl = pl.col("fuel").replace_strict(life, return_dtype=pl.Float64)
    return (
        mix.with_columns(key.alias("interval_start_s"))
        .group_by("interval_start_s")
        .agg(gen.sum().alias("generation_mwh"), (gen * fd).sum().alias("_gf"),
             (gen * fl).sum().alias("_gl"))
        .with_columns((pl.col("_gf") / pl.col("generation_mwh")).alias("intensity_g_per_kwh"),
                      (pl.col("_gl") / pl.col("generation_mwh")).alias("lifecycle_g_per_kwh"))
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
                        lifecycle_col: str | None = None,
                        cfe: pl.DataFrame | None = None,
                        residual_intensity: pl.DataFrame | None = None,
                        marginal: pl.DataFrame | None = None,
                        curtailed: pl.DataFrame | None = None) -> pl.DataFrame:
    """Hourly carbon per site.

    - ``energy``: ``transforms.energy.interval_energy`` output (15-minute, MWh, with
      ``poi_mwh``, the basis).
    - ``intensity``: ``[hour_start_s, <intensity_col>]``, the combustion (direct) intensity
      (e.g. ``ci_direct_g_per_kwh`` from ``sources.read_emaps_carbon_hourly``, or
      ``intensity_from_fuel_mix`` renamed); every hour with consumption must have one.
      ``lifecycle_col``: a life-cycle intensity in the same frame, reported apart.
    - ``cfe``: ``[site_id, hour_start_s, cfe_mwh]`` contracted carbon-free energy (EACs/PPAs
      that meet the Scope 2 Quality Criteria).
    - ``residual_intensity``: ``[hour_start_s, residual_g_per_kwh]``.
    - ``marginal``: ``[hour_start_s, marginal_g_per_kwh]``.
    - ``curtailed``: ``[site_id, hour_start_s, curtailed_mwh]``.

    Returns ``COLUMNS["carbon_hourly"]``.
    """
    _need(energy, ["site_id", "interval_start_s", "ai_mwh", "mining_mwh", "overhead_mwh",
                   "total_mwh", "poi_mwh"], "build_carbon_hourly(energy)")
    _need(intensity, ["hour_start_s", intensity_col, *([lifecycle_col] if lifecycle_col else [])],
          "build_carbon_hourly(intensity)")
    uses = ["ai_mwh", "mining_mwh", "overhead_mwh", "total_mwh"]
    poi = pl.col("poi_mwh")
    h = energy.with_columns(hour_start_s(pl.col("interval_start_s")).alias("hour_start_s")) \
        .group_by("site_id", "hour_start_s").agg(
            *(pl.col(c).sum() for c in uses),
            # sum() would skip a gap's null: the hour's POI energy is unknown, not smaller.
            pl.when(poi.null_count() == 0).then(poi.sum()).alias("poi_mwh"))
    life = pl.col(lifecycle_col).cast(pl.Float64) if lifecycle_col \
        else pl.lit(None, dtype=pl.Float64)
    h = h.join(intensity.select("hour_start_s",
                                pl.col(intensity_col).cast(pl.Float64)
                                .alias("intensity_g_per_kwh"),
                                life.alias("lifecycle_g_per_kwh")),
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

    loc = poi * 1000.0 * pl.col("intensity_g_per_kwh")
    matched = pl.min_horizontal(pl.col("cfe_contracted_mwh"), poi)
    resid = pl.coalesce(pl.col("_resid"), pl.col("intensity_g_per_kwh"))
    h = h.with_columns(
        loc.alias("location_g"),
        (poi * 1000.0 * pl.col("lifecycle_g_per_kwh")).alias("location_lifecycle_g"),
        pl.when(poi.is_not_null()).then(matched).alias("cfe_matched_mwh"),
        pl.when(pl.col("_resid").is_null()).then(pl.lit("grid_average"))
        .otherwise(pl.lit("residual_mix")).alias("market_basis"))
    market = (poi - pl.col("cfe_matched_mwh")) * 1000.0 * resid
    h = h.with_columns(
        market.alias("market_g"),
        pl.when(poi > 0).then(pl.col("cfe_matched_mwh") / poi).alias("cfe_share"),
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
