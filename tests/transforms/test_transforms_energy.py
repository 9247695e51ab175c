"""Energy from power and counters: resets, wraps, gaps flagged (never filled), reconciliation."""

from __future__ import annotations

import csv
import math

import polars as pl
import pytest

from transforms.energy import (
    EnergyInputError,
    counter_interval_energy,
    counter_steps,
    interval_energy,
)
from transforms.sources import SHARED_DATA

NVML = SHARED_DATA / "gpu" / "h100_nvml_trace.csv"


@pytest.mark.parametrize(
    ("readings", "wrap_at", "energy", "kinds"),
    [
        ([0, 10, 20, 30], None, 30, ["ok", "ok", "ok"]),
        ([0, 10, 20, 5, 15], None, 35, ["ok", "ok", "reset", "ok"]),  # reboot: 5 since reset
        ([90, 95, 3], 100, 13, ["ok", "wrap"]),  # 95 -> 100 -> 3
        ([10, 30, 2], 100, 22, ["ok", "reset"]),  # a 72-step "wrap" (> modulus/2) is a reset
        ([7, 7, 7], None, 0, ["ok", "ok"]),
        ([5], None, 0, []),
    ],
)
def test_counter_resets_and_wraps(readings: list[int], wrap_at: int | None, energy: int,
                                  kinds: list[str]) -> None:
    f = pl.DataFrame({"ts_s": list(range(len(readings))), "c": readings})
    steps = counter_steps(f, counter_col="c", wrap_at=wrap_at)
    assert steps["kind"].to_list() == kinds
    assert steps["energy_wh"].sum() == energy


def test_counter_per_device_and_units() -> None:
    # Two GPUs, NVML mJ counters; 3.6e6 mJ = 1 Wh.
    f = pl.DataFrame({"gpu": ["a", "a", "b", "b"], "ts_s": [0, 1, 0, 1],
                      "mj": [0, 7_200_000, 100, 3_600_100]})
    steps = counter_steps(f, counter_col="mj", by=["gpu"], to_wh=1 / 3.6e6)
    assert dict(zip(steps["gpu"], steps["energy_wh"], strict=True)) == pytest.approx(
        {"a": 2.0, "b": 1.0})


def test_counter_gap_across_boundary_is_unallocated() -> None:
    # Readings at 890 and 1000 (gap 110 s crossing 900): 50 Wh known, split unknown.
    f = pl.DataFrame({"ts_s": [880, 890, 1000, 1001], "wh": [0, 10, 60, 61]})
    out = counter_interval_energy(f, counter_col="wh", max_gap_s=10)
    rows = {r["interval_start_s"]: r for r in out.iter_rows(named=True)}
    assert rows[0]["energy_wh"] == 10 and rows[0]["unallocated_wh"] == 50
    assert rows[0]["gaps"] == 1
    assert rows[900]["energy_wh"] == 1 and rows[900]["unallocated_wh"] == 0


def test_nvml_counter_matches_integrated_power_on_real_trace() -> None:
    """The H100 capture: counter energy (mJ) vs left-Riemann of the 1-s-averaged power (mW)."""
    with NVML.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    ts = [float(r["ts"]) for r in rows]
    mj = [int(r["energy_mj"]) for r in rows]
    mw = [int(r["power_mw"]) for r in rows]
    counter_wh_ref = (mj[-1] - mj[0]) / 3.6e6
    riemann_wh_ref = sum(mw[i] / 1000 * (ts[i + 1] - ts[i]) for i in range(len(ts) - 1)) / 3600
    f = pl.DataFrame({"ts_s": ts, "energy_mj": mj})
    steps = counter_steps(f, counter_col="energy_mj", to_wh=1 / 3.6e6, max_gap_s=1.0)
    assert steps["energy_wh"].sum() == pytest.approx(counter_wh_ref, rel=1e-12)
    assert (steps["kind"] == "ok").all()
    # ~51.1 kJ per SOURCES.md; power integration agrees within 2 % (NVML power lags 1 s).
    assert counter_wh_ref * 3.6 == pytest.approx(51.1, abs=0.1)
    assert riemann_wh_ref == pytest.approx(counter_wh_ref, rel=0.02)


def power_frame(ts: list[int], w: float = 3600.0, poi: list[float | None] | None = None,
                contract: float = 4000.0) -> pl.DataFrame:
    n = len(ts)
    return pl.DataFrame({
        "site_id": ["s"] * n, "ts_s": ts, "ai_w": [w / 2] * n, "mining_w": [w / 4] * n,
        "overhead_w": [w / 4] * n, "total_w": [w] * n,
        "poi_meter_w": poi if poi is not None else [w] * n,
        "contract_w": [contract] * n, "hashrate_ths": [1000.0] * n,
    }, schema_overrides={"poi_meter_w": pl.Float64})


@pytest.mark.parametrize(
    ("ts", "max_gap_s", "covered", "missing", "gaps"),
    [
        (list(range(900)), 5, 900, 0, 0),  # complete
        ([t for t in range(900) if not 100 <= t < 160], 5, 840, 60, 1),  # 60 s hole
        ([t for t in range(900) if not 100 <= t < 103], 5, 900, 0, 0),  # 4 s: held (<= limit)
        (list(range(0, 900, 2)), 1, 450, 450, 449),  # every other second, no hold allowed
        (list(range(450)), 5, 450, 450, 0),  # stream ends mid-interval
    ],
)
def test_gaps_are_missing_not_interpolated(ts: list[int], max_gap_s: float, covered: int,
                                           missing: int, gaps: int) -> None:
    out = interval_energy(power_frame(ts), max_gap_s=max_gap_s).row(0, named=True)
    assert (out["covered_s"], out["missing_s"], out["gap_count"]) == (covered, missing, gaps)
    # 3600 W held for `covered` seconds: exactly covered Wh, nothing for the hole.
    assert out["total_mwh"] == pytest.approx(covered * 1e-6)
    assert out["reconciled"] is (missing == 0)


def test_interval_energy_by_use_and_imbalance() -> None:
    # 1800 s at 3600 W with a 4000 W contract, then the site draws 4400 W for 900 s.
    f = pl.concat([power_frame(list(range(1800))),
                   power_frame(list(range(1800, 2700)), w=4400.0)])
    out = interval_energy(f).sort("interval_start_s")
    assert out["interval_start_s"].to_list() == [0, 900, 1800]
    assert out["ai_mwh"].to_list() == pytest.approx([450e-6, 450e-6, 550e-6])
    assert out["unabsorbed_mwh"].to_list() == pytest.approx([100e-6, 100e-6, 0.0])
    assert out["over_contract_mwh"].to_list() == pytest.approx([0.0, 0.0, 100e-6])
    assert out["hashrate_ph_days"][0] == pytest.approx(1000 * 900 / 1000 / 86400)


FIXED_W, FRACTION = 2.0e6, 0.05
"""The site's overhead model: ``overhead_fixed_mw`` = 2, ``overhead_fraction`` = 0.05."""


def metered_site(n: int, silent: range) -> pl.DataFrame:
    """``n`` seconds of sub-metered AI and mining power; the POI meter reads them plus 7 MW
    of overhead, except in ``silent``, where the power stage used the overhead model."""
    ai = [100e6 + 1e3 * (k % 17) for k in range(n)]
    mining = [50e6 - 2e3 * (k % 5) for k in range(n)]
    poi = [None if k in silent else ai[k] + mining[k] + 7e6 for k in range(n)]
    over = [FIXED_W + FRACTION * (a + m) if p is None else p - a - m
            for a, m, p in zip(ai, mining, poi, strict=True)]
    return pl.DataFrame({
        "site_id": "s", "ts_s": list(range(n)), "ai_w": ai, "mining_w": mining,
        "overhead_w": over, "total_w": [ai[k] + mining[k] + over[k] for k in range(n)],
        "poi_meter_w": poi, "contract_w": 200e6, "hashrate_ths": 1000.0,
    }, schema_overrides={"poi_meter_w": pl.Float64})


def test_a_poi_gap_is_estimated_from_sub_meters_and_the_overhead_model() -> None:
    silent = range(10, 40)
    frame = metered_site(900, silent)
    out = interval_energy(frame).row(0, named=True)
    # Independently: metered seconds as read, silent ones AI + mining + fixed + fraction x IT.
    rows = frame.iter_rows(named=True)
    want_wh = math.fsum(
        (r["ai_w"] + r["mining_w"]) * (1 + FRACTION) + FIXED_W if r["poi_meter_w"] is None
        else r["poi_meter_w"] for r in rows) / 3600
    assert out["poi_mwh"] == pytest.approx(want_wh / 1e6, rel=1e-12)  # never null, never 0
    assert (out["poi_missing_s"], out["poi_estimated_s"]) == (30, 30)
    # Flagged: estimated, not complete (published provisional), not reconciled to a meter.
    assert (out["poi_estimated"], out["poi_complete"], out["reconciled"]) == (True, False, False)


def test_seconds_without_any_sample_cannot_be_estimated() -> None:
    # A silent POI meter (10..39) and, later, no site sample at all (500..529): held.
    frame = metered_site(900, range(10, 40)).filter(~pl.col("ts_s").is_between(500, 529))
    out = interval_energy(frame).row(0, named=True)
    assert (out["poi_missing_s"], out["poi_estimated_s"]) == (60, 30)
    assert (out["poi_mwh"], out["poi_estimated"], out["poi_complete"]) == (None, False, False)


def test_a_gap_in_every_sample_is_a_poi_gap_too() -> None:
    ts = [*range(100), *range(130, 900)]  # 100..129 have no sample at all (max_gap_s 5)
    out = interval_energy(power_frame(ts)).row(0, named=True)
    assert (out["missing_s"], out["poi_missing_s"], out["gap_count"]) == (30, 30, 1)
    assert (out["poi_mwh"], out["poi_complete"], out["reconciled"]) == (None, False, False)
    assert (out["poi_estimated_s"], out["poi_estimated"]) == (0, False)
    full = interval_energy(power_frame(list(range(900)))).row(0, named=True)
    assert (full["poi_mwh"], full["poi_complete"], full["poi_missing_s"]) == \
        (pytest.approx(900e-6), True, 0)


def test_meter_disagreement_beyond_tolerance() -> None:
    out = interval_energy(power_frame(list(range(900)), poi=[3700.0] * 900),
                          tolerance_frac=0.01, tolerance_mwh=0.0).row(0, named=True)
    assert out["poi_diff_frac"] == pytest.approx(-100 / 3700)
    assert out["reconciled"] is False
    ok = interval_energy(power_frame(list(range(900)), poi=[3610.0] * 900),
                         tolerance_frac=0.01, tolerance_mwh=0.0).row(0, named=True)
    assert ok["reconciled"] is True


def test_poi_register_replaces_integrated_meter_and_empty_intervals_appear() -> None:
    # Read every second: count at the end of second t is 1 Wh x (t + 1) (3,600 W).
    reg = pl.DataFrame({"site_id": "s", "ts_s": list(range(-1, 900)),
                        "poi_energy_wh": [float(t + 1) for t in range(-1, 900)]})
    out = interval_energy(power_frame(list(range(900))), poi_register=reg,
                          intervals=pl.DataFrame({"interval_start_s": [0, 900]}))
    first, empty = out.row(0, named=True), out.row(1, named=True)
    assert first["poi_mwh"] == pytest.approx(900e-6) and first["reconciled"] is True
    assert (first["poi_source"], first["poi_register_s"]) == ("register", 900)
    assert (empty["missing_s"], empty["total_mwh"], empty["reconciled"]) == (900, 0.0, False)
    # No register value and no sample: the POI energy is unknown, not zero.
    assert (empty["poi_mwh"], empty["poi_complete"], empty["poi_missing_s"]) == \
        (None, False, 900)


def test_input_errors() -> None:
    f = power_frame([0, 1])
    with pytest.raises(EnergyInputError, match=r"missing column\(s\) \['hashrate_ths'\]"):
        interval_energy(f.drop("hashrate_ths"))
    with pytest.raises(EnergyInputError, match="duplicate"):
        interval_energy(pl.concat([f, f]))
    with pytest.raises(EnergyInputError, match="shorter than period_s"):
        interval_energy(f, max_gap_s=0.5)


def test_held_span_is_split_at_the_interval_boundary() -> None:
    # The sample at 897 is held 5 s (up to the next sample at 902): 3 s belong to the first
    # interval and 2 s to the second, so both come out complete.
    ts = [*range(898), *range(902, 1800)]
    out = interval_energy(power_frame(ts), max_gap_s=5).sort("interval_start_s")
    assert out["covered_s"].to_list() == [900, 900]
    assert out["missing_s"].to_list() == [0, 0]
    assert out["total_mwh"].to_list() == pytest.approx([900e-6, 900e-6])
    assert out["reconciled"].to_list() == [True, True]


def test_max_gap_longer_than_an_interval_is_refused() -> None:
    with pytest.raises(EnergyInputError, match="exceeds one interval"):
        interval_energy(power_frame([0, 1]), max_gap_s=901)


def test_gpu_counters_replace_the_samples_they_cover() -> None:
    """Counter steps move AI energy; the overhead takes the change where the POI read, the
    total and the POI estimate where it did not (``transforms.energy`` module doc)."""
    pf = power_frame(list(range(900)), poi=[3600.0] * 450 + [None] * 450)
    counters = pl.DataFrame({"site_id": ["s", "s"], "ts_s": [10, 500],
                             "ai_counter_wh": [12.0, 30.0],
                             "ai_counter_sampled_wh": [10.0, 20.0]})
    base = interval_energy(pf).row(0, named=True)
    got = interval_energy(pf, ai_counter=counters).row(0, named=True)
    assert got["ai_counter_mwh"] == pytest.approx(42e-6)
    assert got["ai_counter_sampled_mwh"] == pytest.approx(30e-6)
    assert got["ai_mwh"] - base["ai_mwh"] == pytest.approx(12e-6)  # +2 Wh and +10 Wh
    assert got["overhead_mwh"] - base["overhead_mwh"] == pytest.approx(-2e-6)  # POI read
    assert got["total_mwh"] - base["total_mwh"] == pytest.approx(10e-6)  # POI estimated
    assert got["poi_mwh"] - base["poi_mwh"] == pytest.approx(10e-6)
    assert base["ai_counter_mwh"] == 0.0
