"""Marts derived from the sink's tables by the transforms package (pure polars adapters).

``transforms.energy.interval_energy`` and ``transforms.carbon.build_carbon_hourly`` do the
arithmetic (settlement: ``streams.marts.settle``); this module only selects their inputs
from the sink's tables and keeps the intervals (hours) that are over: an interval still
filling would fail the completeness gate on every publication.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from transforms.calendar import HOUR_S, INTERVAL_S
from transforms.carbon import CarbonInputError, build_carbon_hourly
from transforms.energy import COUNTER_COLUMNS, REGISTERS, SITE_POWER_COLUMNS, interval_energy
from transforms.settlement import PRICE, build_settlement

DERIVED = ("interval_energy", "carbon_hourly", "settlement")
LOOKAHEAD_S = 10
"""Seconds read past the day's end so the day's last sample is held correctly."""


def day_of(epoch_s: int) -> date:
    return datetime.fromtimestamp(epoch_s, UTC).date()


def day_bounds(day: date) -> tuple[int, int]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return start, start + 86_400


def empty_site_power() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {c: pl.Float64() for c in SITE_POWER_COLUMNS}
    schema.update({"site_id": pl.String(), "ts_s": pl.Int64()})
    return pl.DataFrame(schema=schema)


def day_interval_energy(
    site_power: pl.DataFrame, day: date, last_ts_by_site: pl.DataFrame
) -> pl.DataFrame:
    """Interval energy of ``day`` (UTC) for intervals that are over: the site has the
    interval's last second or a later one (the agents close seconds in order, so every second
    before it is closed too). ``last_ts_by_site``: ``[site_id, last_ts_s]``.

    Where ``site_power`` has the POI register (``poi_energy_wh``), the POI energy comes from
    it, and AI and mining from theirs (``ai_energy_wh``, ``mining_energy_wh``), and the GPU
    counters' steps (``ai_counter_wh``) replace the AI samples they cover: a reading
    counts to the end of its second, so an interval's closing reading is in its own last
    second and the rule above holds for it too. The day's first second needs the
    reading of the second before the day: the publication passes it in (else that second
    comes from the samples, ``poi_source`` mixed)."""
    start, end = day_bounds(day)
    # A store from before a register column has none: that use comes from its samples.
    reg = {
        u: site_power.select("site_id", "ts_s", f"{u}_energy_wh").drop_nulls()
        for u in REGISTERS
        if f"{u}_energy_wh" in site_power.columns
    }
    counters = (
        site_power.select(COUNTER_COLUMNS).drop_nulls()
        if all(c in site_power.columns for c in COUNTER_COLUMNS)
        else None
    )
    energy = interval_energy(
        site_power.select(SITE_POWER_COLUMNS),
        poi_register=reg.get("poi"),
        ai_register=reg.get("ai"),
        mining_register=reg.get("mining"),
        ai_counter=counters,
    )
    return (
        energy.join(last_ts_by_site, on="site_id", how="inner")
        .filter(
            pl.col("interval_start_s").is_between(start, end, closed="left"),
            pl.col("interval_start_s") + INTERVAL_S - 1 <= pl.col("last_ts_s"),
        )
        .drop("last_ts_s")
    )


def hourly_intensity(grid_carbon: pl.DataFrame) -> pl.DataFrame | None:
    """``[hour_start_s, intensity_g_per_kwh]`` from the average rows of ONE region; None if
    there are none or several regions (which region a site is in is not in these tables)."""
    avg = grid_carbon.filter(pl.col("kind") == "average")
    if avg.height == 0 or avg["region"].n_unique() != 1:
        return None
    return avg.select(pl.col("hour_start_s").cast(pl.Int64), "intensity_g_per_kwh")


def complete_hours_carbon(
    energy: pl.DataFrame, intensity: pl.DataFrame | None
) -> pl.DataFrame | None:
    """Hourly carbon for hours whose four intervals are all in ``energy``; None when no
    intensity is available for every such hour."""
    if intensity is None or energy.height == 0:
        return None
    hour = pl.col("interval_start_s") // HOUR_S * HOUR_S
    full = (
        energy.with_columns(hour.alias("_h"))
        .group_by("site_id", "_h")
        .len()
        .filter(pl.col("len") == HOUR_S // INTERVAL_S)
        .drop("len")
    )
    kept = energy.with_columns(hour.alias("_h")).join(full, on=["site_id", "_h"]).drop("_h")
    if kept.height == 0:
        return None
    try:
        return build_carbon_hourly(kept, intensity)
    except CarbonInputError:
        return None


def empty_derived() -> dict[str, pl.DataFrame]:
    """Zero-row frames with the derived marts' columns and types (for empty views)."""
    energy = interval_energy(empty_site_power())
    intensity = pl.DataFrame(
        schema={"hour_start_s": pl.Int64(), "intensity_g_per_kwh": pl.Float64()}
    )
    prices = pl.DataFrame(schema={"interval_start_s": pl.Int64(), "price_usd_per_mwh": PRICE})
    contracts = pl.DataFrame(
        schema={
            "site_id": pl.String(),
            "start_s": pl.Int64(),
            "end_s": pl.Int64(),
            "mw": pl.Float64(),
            "price_usd_per_mwh": PRICE,
        }
    )
    return {
        "interval_energy": energy,
        "carbon_hourly": build_carbon_hourly(energy, intensity),
        "settlement": build_settlement(energy, prices, contracts),
    }
