"""POI energy from the meter's register, the samples filling only what it cannot cover."""

from __future__ import annotations

import itertools

import polars as pl
import pytest

from transforms.energy import interval_energy


def true_load(n: int) -> list[float]:
    """W per second: 5 MW for the first 15 s of each minute, then 2 MW (a mining fleet
    that wakes and sleeps inside the minute)."""
    return [5e6 if t % 60 < 15 else 2e6 for t in range(n)]


def counts(load: list[float], start_wh: float = 1e9) -> list[float]:
    """The register at the end of each second (Wh), integrating ``load``."""
    return list(itertools.accumulate((w / 3600.0 for w in load), initial=start_wh))[1:]


def samples(load: list[float], every_s: int) -> pl.DataFrame:
    """Site power sampled every ``every_s`` seconds, the POI meter at its sampling instant."""
    ts = list(range(0, len(load), every_s))
    poi = [load[t] for t in ts]
    n = len(ts)
    return pl.DataFrame(
        {
            "site_id": "s",
            "ts_s": ts,
            "ai_w": [0.0] * n,
            "mining_w": poi,
            "overhead_w": [0.0] * n,
            "total_w": poi,
            "poi_meter_w": poi,
            "contract_w": [3e6] * n,
            "hashrate_ths": [1.0] * n,
        }
    )


def register(ts: list[int], wh: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"site_id": "s", "ts_s": ts, "poi_energy_wh": wh})


def read_every(c: list[float], every_s: int, start_wh: float = 1e9) -> pl.DataFrame:
    """Readings in the last second of each ``every_s`` (the count at the minute), plus the
    opening count (read in second -1)."""
    ts = [-1, *range(every_s - 1, len(c), every_s)]
    return register(ts, [start_wh, *(c[t] for t in ts[1:])])


def energy(power: pl.DataFrame, reg: pl.DataFrame | None) -> list[dict[str, object]]:
    return interval_energy(power, max_gap_s=120, period_s=60, poi_register=reg).to_dicts()


def test_register_difference_wins_over_samples_that_disagree() -> None:
    load = true_load(900)
    c = counts(load)
    truth_mwh = (c[899] - 1e9) / 1e6  # register difference, from the counts alone
    assert truth_mwh == pytest.approx(sum(load) / 3.6e9)  # 2.75 MW mean: 0.6875 MWh
    power = samples(load, 60)  # every sample falls in the 5 MW quarter of its minute
    (by_samples,) = energy(power, None)
    assert by_samples["poi_mwh"] == pytest.approx(5e6 * 900 / 3.6e9)  # 1.25 MWh: 82 % high
    assert by_samples["poi_source"] == "samples" and by_samples["poi_register_s"] == 0
    (row,) = energy(power, read_every(c, 60))
    assert row["poi_mwh"] == pytest.approx(truth_mwh, rel=1e-12)
    assert (row["poi_source"], row["poi_register_s"], row["poi_complete"]) == (
        "register",
        900,
        True,
    )
    assert (row["poi_missing_s"], row["poi_estimated"]) == (0, False)


def test_no_register_falls_back_to_samples_and_a_partial_one_mixes() -> None:
    load = true_load(2700)
    c = counts(load)
    reg = read_every(c, 60).filter(pl.col("ts_s") < 1500)  # read until 1,500, then none
    first, second, third = energy(samples(load, 60), reg)
    assert (first["poi_source"], first["poi_register_s"]) == ("register", 900)
    assert first["poi_mwh"] == pytest.approx((c[899] - 1e9) / 1e6)
    # 900..1,500 from the register, the 60-s samples fill 1,500..1,800.
    assert (second["poi_source"], second["poi_register_s"]) == ("mixed", 600)
    want = (c[1499] - c[899]) / 1e6 + sum(load[t] * 60 for t in range(1500, 1800, 60)) / 3.6e9
    assert second["poi_mwh"] == pytest.approx(want, rel=1e-12)
    assert second["poi_complete"] is True
    assert (third["poi_source"], third["poi_register_s"]) == ("samples", 0)
    assert third["poi_mwh"] == pytest.approx(5e6 * 900 / 3.6e9)


def test_a_reset_inside_the_interval_is_filled_from_the_samples() -> None:
    # Read every second; the meter integrates 4,000 W but the samples say 3,600 W, so the
    # answer shows which seconds came from where. It resets half-way through second 400.
    c = [4000.0 / 3600.0 * (t + 1) for t in range(900)]
    c = [*c[:400], *(4000.0 / 3600.0 * (t + 0.5 - 400) for t in range(400, 900))]
    reg = register(list(range(-1, 900)), [0.0, *c])
    n = 900
    power = pl.DataFrame(
        {
            "site_id": "s",
            "ts_s": list(range(n)),
            "ai_w": [0.0] * n,
            "mining_w": [3600.0] * n,
            "overhead_w": [0.0] * n,
            "total_w": [3600.0] * n,
            "poi_meter_w": [3600.0] * n,
            "contract_w": [0.0] * n,
            "hashrate_ths": [1.0] * n,
        }
    )
    (row,) = interval_energy(power, poi_register=reg).to_dicts()
    # Second 400 (the reset's step: its energy before the reset is unknown) from the sample.
    assert (row["poi_source"], row["poi_register_s"]) == ("mixed", 899)
    assert row["poi_mwh"] == pytest.approx((899 * 4000.0 + 3600.0) / 3.6e9, rel=1e-12)
    assert row["poi_complete"] is True


def test_a_step_across_a_boundary_is_not_split() -> None:
    # Read every 60 s at the half minute: the steps 870..930 straddle 900, so both intervals
    # take 0..30 and 870..900 (or 900..930) from the samples; the rest is the register's.
    load = true_load(1800)
    c = counts(load)
    reg = register(list(range(29, 1800, 60)), [c[t] for t in range(29, 1800, 60)])
    first, second = energy(samples(load, 60), reg)
    assert (first["poi_source"], first["poi_register_s"]) == ("mixed", 840)
    assert (second["poi_source"], second["poi_register_s"]) == ("mixed", 840)
    # Samples at 0 and 840 are held 60 s; their first 30 s (0..30) and their last 30 s
    # (870..900) are not the register's.
    want = (c[869] - c[29]) / 1e6 + (load[0] * 30 + load[840] * 30) / 3.6e9
    assert first["poi_mwh"] == pytest.approx(want, rel=1e-12)
