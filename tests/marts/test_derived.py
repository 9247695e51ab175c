"""Which intervals of a day are over, and so published (pure)."""

from __future__ import annotations

from datetime import date

import polars as pl

from streams.marts.derived import day_bounds, day_interval_energy
from transforms.energy import SITE_POWER_COLUMNS

DAY = date(2025, 7, 1)


def _seconds(start: int, n: int) -> pl.DataFrame:
    rows = [
        {
            "site_id": "s1",
            "ts_s": start + i,
            "ai_w": 1e6,
            "mining_w": 5e5,
            "overhead_w": 1e5,
            "total_w": 1.6e6,
            "poi_meter_w": 1.6e6,
            "contract_w": 2e6,
            "hashrate_ths": 1.0,
        }
        for i in range(n)
    ]
    return pl.DataFrame(rows).select(SITE_POWER_COLUMNS)


def test_an_interval_is_over_once_its_last_second_is_in() -> None:
    start, end = day_bounds(DAY)
    last_interval = end - 900
    power = _seconds(last_interval - 900, 1800)  # the day's last two intervals, complete
    last = pl.DataFrame({"site_id": ["s1"], "last_ts_s": [end - 1]})
    energy = day_interval_energy(power, DAY, last)
    assert energy["interval_start_s"].to_list() == [last_interval - 900, last_interval]


def test_an_interval_missing_its_last_second_is_not_over() -> None:
    start, end = day_bounds(DAY)
    power = _seconds(end - 1800, 1799)
    last = pl.DataFrame({"site_id": ["s1"], "last_ts_s": [end - 2]})
    energy = day_interval_energy(power, DAY, last)
    assert energy["interval_start_s"].to_list() == [end - 1800]


def test_the_poi_register_gives_the_interval_energy() -> None:
    """The register (1 Wh a second: 3.6 kW) disagrees with the POI samples (1.6 MW): the
    intervals it covers take its difference; the day's first second has no reading before
    it in the day's rows, so it comes from the samples."""
    start, end = day_bounds(DAY)
    power = _seconds(start, 1800).with_columns(
        (pl.col("ts_s") - start + 1).cast(pl.Float64).alias("poi_energy_wh")
    )
    last = pl.DataFrame({"site_id": ["s1"], "last_ts_s": [start + 1799]})
    first, second = day_interval_energy(power, DAY, last).to_dicts()
    assert (second["poi_source"], second["poi_mwh"]) == ("register", 900 * 1e-6)
    assert (first["poi_source"], first["poi_register_s"]) == ("mixed", 899)
    assert first["poi_mwh"] == 899e-6 + 1.6e6 / 3.6e9
