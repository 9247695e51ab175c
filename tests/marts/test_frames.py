"""Pure frame building: watermarks, rollups against an independent calculation, and
independence from how the messages were cut into batches."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec
import polars as pl
import pytest

from schemas.events import SitePower
from schemas.telemetry import GpuFrame
from streams.marts.frames import accept_frames, build_frames
from streams.marts.store import Batch, open_store, write_batch
from streams.marts.tables import BY_NAME, TABLES
from tests.marts.helpers import asic_frame, gpu_frame, meter_frame, site_second

GPU = "telemetry.gpu.v1"


def _gpu(source: str, ts: float, seq: int) -> tuple[str, Any]:
    return GPU, GpuFrame(site_id="s", source_id=source, ts_s=ts, seq=seq, node_id=[source],
                         gpu_index=[0], power_w=[1.0], energy_mj=[None])


@pytest.mark.parametrize(
    ("marks", "frames", "accepted", "stale"),
    [
        ({}, [], [], 0),
        ({}, [("a", 10.0, 1)], [0], 0),
        ({}, [("a", 10.0, 1), ("a", 10.0, 1)], [0], 1),  # duplicate inside one batch
        ({(GPU, "a"): (10.0, 1)}, [("a", 10.0, 1)], [], 1),  # replay of the last frame
        ({(GPU, "a"): (10.0, 1)}, [("a", 9.0, 7)], [], 1),  # older, whatever its seq
        ({(GPU, "a"): (10.0, 1)}, [("a", 10.0, 2)], [0], 0),  # same second, next seq
        ({(GPU, "a"): (10.0, 5)}, [("a", 11.0, 0)], [0], 0),  # collector restart: seq reset
        ({}, [("a", 10.0, 1), ("a", 9.0, 2)], [0], 1),  # out of order inside a batch
        ({(GPU, "a"): (10.0, 1)}, [("b", 1.0, 1), ("a", 11.0, 1)], [0, 1], 0),  # per source
    ],
)
def test_accept_frames(marks: dict[tuple[str, str], tuple[float, int]],
                       frames: list[tuple[str, float, int]], accepted: list[int],
                       stale: int) -> None:
    items = [_gpu(src, ts, seq) for src, ts, seq in frames]
    out = accept_frames(items, marks)
    assert [m for _, m in out.items] == [items[i][1] for i in accepted]
    assert sum(out.stale.values()) == stale


def test_non_telemetry_passes_untouched() -> None:
    sp = ("site.power.v1", site_second("s", 5))
    out = accept_frames([sp, sp], {})
    assert out.items == [sp, sp] and not out.marks


def _q(x: float) -> Decimal:
    return Decimal(x).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def test_gpu_rollup_matches_independent_sums() -> None:
    frames = [gpu_frame("s", f"n{n}", seq, 1_000_020.0 + seq * 7.5, gpus=3)
              for seq in range(20) for n in range(2)]
    # Independent: plain Python over every reading.
    exp: dict[tuple[str, int, int], dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "sum": Decimal(0), "min": float("inf"), "max": -float("inf"),
                 "e": []})
    for f in frames:
        for node, g, p, e in zip(f.node_id, f.gpu_index, f.power_w, f.energy_mj, strict=True):
            r = exp[(node, g, int(f.ts_s // 60 * 60))]
            r["n"] += 1
            r["sum"] += _q(p)
            r["min"], r["max"] = min(r["min"], p), max(r["max"], p)
            r["e"].append((f.ts_s, e))
    got = build_frames([(GPU, f) for f in frames])["telemetry_gpu_1m"]
    assert got.height == len(exp)
    for row in got.iter_rows(named=True):
        r = exp[(row["node_id"], row["gpu_index"], row["minute_s"])]
        assert row["readings"] == row["power_readings"] == r["n"]
        assert row["power_sum_w"] == r["sum"]
        assert (row["power_min_w"], row["power_max_w"]) == (r["min"], r["max"])
        assert (row["energy_first_ts_s"], row["energy_first_mj"]) == min(r["e"])
        assert (row["energy_last_ts_s"], row["energy_last_mj"]) == max(r["e"])


def test_asic_rollup_counts_null_power_and_hashing() -> None:
    frames = [asic_frame("s", "r", seq, 1_000_020.0 + seq) for seq in range(10)]
    got = build_frames([("telemetry.asic.v1", f) for f in frames])["telemetry_asic_1m"]
    m0 = got.filter(pl.col("miner_id") == "r-m0").row(0, named=True)
    assert m0["readings"] == 10 and m0["power_readings"] == 0 and m0["power_sum_w"] == 0
    # state is sleeping when (seq + k) % 5 == 0: seq 0 and 5 for miner 0
    assert m0["hashing_readings"] == 8
    m1 = got.filter(pl.col("miner_id") == "r-m1").row(0, named=True)
    assert m1["hashrate_sum_ths"] == sum(_q(f.hashrate_ths[1]) for f in frames)


def test_site_power_duplicate_key_keeps_last() -> None:
    a = site_second("s", 100, ai_w=1.0)
    b = site_second("s", 100, ai_w=2.0)
    got = build_frames([("site.power.v1", a), ("site.power.v1", b)])["site_power"]
    assert got["ai_w"].to_list() == [2.0]


def test_every_table_partition_column_is_in_its_key() -> None:
    for t in TABLES:
        assert t.time_col in t.key, t.name
        assert set(t.key) <= set(t.names), t.name


def _items(seconds: int) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for i in range(seconds):
        ts = 1_000_000 + i
        out.append(("site.power.v1", site_second("s", ts)))
        out += [(GPU, gpu_frame("s", f"n{n}", i, ts + 0.1)) for n in range(2)]
        out.append(("telemetry.meter.v1", meter_frame("s", "m", i, ts + 0.2)))
        out.append(("telemetry.asic.v1", asic_frame("s", "r", i, ts + 0.3)))
    return out


def _load(path: Any, items: list[tuple[str, Any]], cuts: list[int]) -> dict[str, pl.DataFrame]:
    con = open_store(path)
    marks: dict[tuple[str, str], tuple[float, int]] = {}
    bounds = [0, *cuts, len(items)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        acc = accept_frames(items[lo:hi], marks)
        marks.update(acc.marks)
        write_batch(con, Batch(frames=build_frames(acc.items), offsets={("t", 0): hi},
                               marks=acc.marks, frames_seen=acc.frames, stale=acc.stale))
    out = {t.name: con.sql(f"SELECT * FROM {t.name} ORDER BY ALL").pl() for t in TABLES}
    con.close()
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_batching_does_not_change_the_tables(tmp_path: Any, seed: int) -> None:
    items = _items(80)  # crosses a minute boundary (ts 1_000_020)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(items)), 6))
    whole = _load(tmp_path / "whole.duckdb", items, [])
    split = _load(tmp_path / "split.duckdb", items, cuts)
    for name in whole:
        assert whole[name].equals(split[name]), name
    assert whole["telemetry_gpu_1m"]["readings"].sum() == 80 * 2 * 4
    assert whole["site_power"].height == 80


def test_rollup_merge_tie_rule_matches_in_batch_rule(tmp_path: Any) -> None:
    """Two readings of one GPU at the same instant with different counters: first takes the
    smaller counter, last the larger, whether they arrive together or apart."""
    a = GpuFrame(site_id="s", source_id="x", ts_s=1_000_000.0, seq=1, node_id=["x"],
                 gpu_index=[0], power_w=[1.0], energy_mj=[50])
    b = GpuFrame(site_id="s", source_id="y", ts_s=1_000_000.0, seq=1, node_id=["x"],
                 gpu_index=[0], power_w=[2.0], energy_mj=[40])
    together = _load(tmp_path / "t.duckdb", [(GPU, a), (GPU, b)], [])
    apart = _load(tmp_path / "a.duckdb", [(GPU, a), (GPU, b)], [1])
    for got in (together, apart):
        row = got["telemetry_gpu_1m"].row(0, named=True)
        assert (row["energy_first_mj"], row["energy_last_mj"]) == (40, 50)
    assert BY_NAME["telemetry_gpu_1m"].merge == "rollup"


def test_site_power_rows_are_site_power_fields() -> None:
    """Every SitePower field is a column, the sample-and-hold counts included."""
    sp = msgspec.structs.replace(
        site_second("s", 7, poi=False),
        held_sources=3,
        held_readings=5,
        stale_sources=1,
        mining_reading_s=2.5,
    )
    assert set(BY_NAME["site_power"].names) == set(SitePower.__struct_fields__) - {"v"}
    row = build_frames([("site.power.v1", sp)])["site_power"].row(0, named=True)
    for name in BY_NAME["site_power"].names:
        assert row[name] == getattr(sp, name), name
    assert isinstance(sp, SitePower)
