"""AI and mining energy from their sub-meters' registers, the samples filling only what a
register cannot cover; the overhead stays POI - AI - mining."""

from __future__ import annotations

import itertools
from typing import Any

import polars as pl
import pytest

from transforms.energy import interval_energy

N = 1800
AI = [4e6 if t % 60 < 20 else 3e6 for t in range(N)]  # GPU jobs start on the minute
MINING = [2e6 if t % 60 < 15 else 0.5e6 for t in range(N)]  # miners wake and sleep
OVERHEAD = 0.4e6
POI = [a + m + OVERHEAD for a, m in zip(AI, MINING, strict=True)]


def counts(load: list[float], start_wh: float) -> list[float]:
    """The register at the end of each second (Wh), integrating ``load``."""
    return list(itertools.accumulate((w / 3600.0 for w in load), initial=start_wh))[1:]


def read_every_minute(col: str, load: list[float], start_wh: float = 5e8) -> pl.DataFrame:
    """Read in the last second of each minute, plus the opening count (second -1)."""
    c = counts(load, start_wh)
    ts = [-1, *range(59, len(c), 60)]
    return pl.DataFrame({"site_id": "s", "ts_s": ts, col: [start_wh, *(c[t] for t in ts[1:])]})


def samples(every_s: int = 60) -> pl.DataFrame:
    """Stage 2's rows sampled every ``every_s``: overhead = POI - AI - mining, total = POI."""
    ts = list(range(0, N, every_s))
    n = len(ts)
    return pl.DataFrame(
        {
            "site_id": "s",
            "ts_s": ts,
            "ai_w": [AI[t] for t in ts],
            "mining_w": [MINING[t] for t in ts],
            "overhead_w": [OVERHEAD] * n,
            "total_w": [POI[t] for t in ts],
            "poi_meter_w": [POI[t] for t in ts],
            "contract_w": [8e6] * n,
            "hashrate_ths": [1.0] * n,
        }
    )


def energy(
    *,
    poi_register: pl.DataFrame | None = None,
    ai_register: pl.DataFrame | None = None,
    mining_register: pl.DataFrame | None = None,
) -> list[dict[str, Any]]:
    return interval_energy(
        samples(),
        max_gap_s=120,
        period_s=60,
        poi_register=poi_register,
        ai_register=ai_register,
        mining_register=mining_register,
    ).to_dicts()


def truth_mwh(load: list[float], iv: int) -> float:
    return sum(load[900 * iv : 900 * (iv + 1)]) / 3.6e9


def assert_overhead_identity(row: dict[str, Any]) -> None:
    ai, mining, over = (float(row[c]) for c in ("ai_mwh", "mining_mwh", "overhead_mwh"))
    assert float(row["total_mwh"]) == pytest.approx(ai + mining + over, rel=1e-9)
    assert over == pytest.approx(float(row["poi_mwh"]) - ai - mining, rel=1e-9)


def test_sub_meter_registers_give_ai_and_mining_exactly_where_samples_are_coarse() -> None:
    (by_samples, _) = energy()
    # Every 60-s sample falls in the high part of its minute: both uses come out high.
    assert by_samples["ai_mwh"] == pytest.approx(4e6 * 900 / 3.6e9)  # 1.0 vs 0.8333: +20 %
    assert by_samples["mining_mwh"] == pytest.approx(2e6 * 900 / 3.6e9)  # 0.5 vs 0.2188: +129 %
    assert (by_samples["ai_source"], by_samples["ai_register_s"]) == ("samples", 0)
    rows = energy(
        poi_register=read_every_minute("poi_energy_wh", POI),
        ai_register=read_every_minute("ai_energy_wh", AI),
        mining_register=read_every_minute("mining_energy_wh", MINING),
    )
    for iv, row in enumerate(rows):
        assert row["ai_mwh"] == pytest.approx(truth_mwh(AI, iv), rel=1e-9)
        assert row["mining_mwh"] == pytest.approx(truth_mwh(MINING, iv), rel=1e-9)
        assert row["poi_mwh"] == pytest.approx(truth_mwh(POI, iv), rel=1e-9)
        # The overhead is the true 0.4 MW: POI, AI and mining all from their registers.
        assert row["overhead_mwh"] == pytest.approx(OVERHEAD * 900 / 3.6e9, rel=1e-9)
        assert (row["ai_source"], row["ai_register_s"]) == ("register", 900)
        assert (row["mining_source"], row["mining_register_s"]) == ("register", 900)
        assert row["reconciled"] is True
        assert_overhead_identity(row)


def test_a_missing_sub_meter_register_falls_back_to_samples_and_keeps_the_identity() -> None:
    # AI read in the first interval only, mining not at all, POI from its samples.
    ai_reg = read_every_minute("ai_energy_wh", AI).filter(pl.col("ts_s") < 900)
    first, second = energy(ai_register=ai_reg)
    assert (first["ai_source"], first["ai_register_s"]) == ("register", 900)
    assert first["ai_mwh"] == pytest.approx(truth_mwh(AI, 0), rel=1e-9)
    assert (second["ai_source"], second["ai_register_s"]) == ("samples", 0)
    assert second["ai_mwh"] == pytest.approx(4e6 * 900 / 3.6e9)
    for row in (first, second):
        assert (row["mining_source"], row["mining_register_s"]) == ("samples", 0)
        assert row["mining_mwh"] == pytest.approx(2e6 * 900 / 3.6e9)
        # The POI samples are the total; the overhead is what AI and mining leave of it.
        assert row["total_mwh"] == pytest.approx(6.4e6 * 900 / 3.6e9)
        assert_overhead_identity(row)


def test_a_partial_register_mixes_and_a_reset_is_filled_from_the_samples() -> None:
    # Read every second; the AI meter integrates 4,000 W but the samples say 3,600 W. It
    # resets half-way through second 400, and is not read after second 799.
    n = 900
    c = [4000.0 / 3600.0 * (t + 1) for t in range(n)]
    c = [*c[:400], *(4000.0 / 3600.0 * (t + 0.5 - 400) for t in range(400, n))]
    reg = pl.DataFrame(
        {"site_id": "s", "ts_s": list(range(-1, 800)), "ai_energy_wh": [0.0, *c[:800]]}
    )
    power = pl.DataFrame(
        {
            "site_id": "s",
            "ts_s": list(range(n)),
            "ai_w": [3600.0] * n,
            "mining_w": [0.0] * n,
            "overhead_w": [100.0] * n,
            "total_w": [3700.0] * n,
            "poi_meter_w": [3700.0] * n,
            "contract_w": [0.0] * n,
            "hashrate_ths": [1.0] * n,
        }
    )
    (row,) = interval_energy(power, ai_register=reg).to_dicts()
    # Second 400 (the reset's step) and 800..899 (no reading) from the samples.
    assert (row["ai_source"], row["ai_register_s"]) == ("mixed", 799)
    assert row["ai_mwh"] == pytest.approx((799 * 4000.0 + 101 * 3600.0) / 3.6e9, rel=1e-9)
    # The meter's 400 W more over 799 s is AI's, not overhead: the POI total is unchanged.
    assert row["overhead_mwh"] == pytest.approx((900 * 100.0 - 799 * 400.0) / 3.6e9, rel=1e-9)
    assert row["total_mwh"] == pytest.approx(900 * 3700.0 / 3.6e9, rel=1e-9)
    assert_overhead_identity(row)


def test_the_poi_register_alone_moves_the_overhead_not_the_sub_metered_uses() -> None:
    (row, _) = energy(poi_register=read_every_minute("poi_energy_wh", POI))
    assert row["poi_mwh"] == pytest.approx(truth_mwh(POI, 0), rel=1e-9)
    assert row["ai_mwh"] == pytest.approx(4e6 * 900 / 3.6e9)  # samples: no AI register
    assert row["total_mwh"] == pytest.approx(row["poi_mwh"], rel=1e-9)
    assert_overhead_identity(row)
