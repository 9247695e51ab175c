"""Decoded messages -> one polars frame per table (pure: no Kafka, no DuckDB).

Telemetry frames are columnar already, so their readings are concatenated column by column
(one Python step per frame, never per reading) and rolled up per device and minute here; the
store then merges each rollup row with what the table holds for that minute.

Replays of telemetry (a second line of defence behind the offsets stored with the rows) are
dropped by a per-source watermark: a frame is new only if its ``(ts_s, seq)`` is above every
frame already seen from the same topic and source, in offset order. The rule depends only
on the order of the messages, not on how they were cut into batches, so a crashed and
resumed sink accepts exactly the frames a clean run accepts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import polars as pl

from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame
from streams.marts.tables import BY_NAME, BY_TOPIC, Table

Mark = tuple[float, int]
"""Watermark of one source: the largest ``(ts_s, seq)`` accepted."""

TELEMETRY = {"telemetry.meter.v1", "telemetry.gpu.v1", "telemetry.asic.v1"}
POSITIONED = frozenset({"site.config.v1"})
"""Topics whose rows carry their Kafka partition and offset: the sink builds them with the
messages' positions (``streams.marts.configs``), not here."""


@dataclass
class Accepted:
    """Outcome of the watermark filter for one batch."""

    items: list[tuple[str, Any]]
    marks: dict[tuple[str, str], Mark]
    """New watermark of every source seen in the batch."""
    frames: Counter[tuple[str, str]] = field(default_factory=Counter)
    stale: Counter[tuple[str, str]] = field(default_factory=Counter)


def accept_frames(items: Iterable[tuple[str, Any]], marks: dict[tuple[str, str], Mark]) -> Accepted:
    """Drop telemetry frames at or below their source's watermark; pass everything else."""
    out = Accepted(items=[], marks={})
    for topic, msg in items:
        if topic not in TELEMETRY:
            out.items.append((topic, msg))
            continue
        key = (topic, msg.source_id)
        mark = (float(msg.ts_s), int(msg.seq))
        prev = out.marks.get(key) or marks.get(key)
        if prev is not None and mark <= prev:
            out.stale[key] += 1
            continue
        out.marks[key] = mark
        out.frames[key] += 1
        out.items.append((topic, msg))
    return out


def _struct_frame(table: Table, msgs: Sequence[Any]) -> pl.DataFrame:
    """Rows from message fields of the same names (units already match)."""
    cols: dict[str, list[Any]] = {}
    for c in table.columns:
        if c.name == "context_json":
            cols[c.name] = [msgspec.json.encode(m.context).decode() for m in msgs]
        else:
            cols[c.name] = [getattr(m, c.name) for m in msgs]
    frame = pl.DataFrame(
        cols, schema={k: _load_type(v) for k, v in table.schema().items()}, strict=False
    )
    frame = frame.with_columns(
        pl.col(c.name).cast(c.dtype) for c in table.columns if isinstance(c.dtype, pl.Decimal)
    )
    # Several versions of one key in a batch: the last (highest offset) wins, as in the table.
    return frame.unique(subset=list(table.key), keep="last", maintain_order=True)


def _load_type(dtype: pl.DataType) -> pl.DataType:
    # Decimals are built from floats: load as Float64, then cast (rounds to the scale).
    return pl.Float64() if isinstance(dtype, pl.Decimal) else dtype


def _repeat(values: list[Any], lengths: np.ndarray, dtype: pl.DataType) -> pl.Series:
    index = np.repeat(np.arange(len(values)), lengths)
    return pl.Series(values=values, dtype=dtype).gather(index)


def _concat(frames: Sequence[Any], name: str, dtype: pl.DataType) -> pl.Series:
    out: list[Any] = []
    for f in frames:
        out.extend(getattr(f, name))
    return pl.Series(name, out, dtype=dtype, strict=False)


def _long(frames: Sequence[Any], columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """Readings of many frames as one long frame with per-frame ``site_id`` and ``ts_s``."""
    lengths = np.fromiter((len(f.power_w) for f in frames), dtype=np.int64, count=len(frames))
    data = {
        "site_id": _repeat([f.site_id for f in frames], lengths, pl.String()),
        "ts_s": _repeat([float(f.ts_s) for f in frames], lengths, pl.Float64()),
    }
    data.update({name: _concat(frames, name, dtype) for name, dtype in columns.items()})
    return pl.DataFrame(data)


def rollup(
    readings: pl.DataFrame,
    table: Table,
    device: list[str],
    energy: str | None,
    extra: Sequence[pl.Expr] = (),
) -> pl.DataFrame:
    """Per device and minute: counts, exact power sum, min/max, first/last counter value.

    First/last counter values are taken at the smallest/largest ``(ts_s, value)``, the same
    tie rule the store's merge uses, so the result does not depend on batching.
    """
    ts = pl.col("ts_s")
    aggs: list[pl.Expr] = [
        pl.len().cast(pl.Int64).alias("readings"),
        pl.col("power_w").count().cast(pl.Int64).alias("power_readings"),
        pl.col("power_w").cast(pl.Decimal(38, 6)).sum().alias("power_sum_w"),
        pl.col("power_w").min().alias("power_min_w"),
        pl.col("power_w").max().alias("power_max_w"),
        *extra,
        ts.min().alias("first_ts_s"),
        ts.max().alias("last_ts_s"),
    ]
    sort_by = ["ts_s"]
    if energy is not None:
        has = pl.col(energy).is_not_null()
        unit = energy.rsplit("_", 1)[1]
        aggs += [
            pl.col(energy).drop_nulls().first().alias(f"energy_first_{unit}"),
            ts.filter(has).first().alias("energy_first_ts_s"),
            pl.col(energy).drop_nulls().last().alias(f"energy_last_{unit}"),
            ts.filter(has).last().alias("energy_last_ts_s"),
        ]
        sort_by.append(energy)
    minute = ((pl.col("ts_s") // 60) * 60).cast(pl.Int64).alias("minute_s")
    out = (
        readings.lazy()
        .sort(sort_by, nulls_last=True)
        .group_by("site_id", *device, minute, maintain_order=True)
        .agg(aggs)
        .collect()
    )
    return out.select(pl.col(c.name).cast(c.dtype) for c in table.columns)


def meter_rollup(frames: Sequence[MeterFrame]) -> pl.DataFrame:
    long = _long(
        frames, {"meter_id": pl.String(), "power_w": pl.Float64(), "energy_wh": pl.Float64()}
    )
    return rollup(long, BY_NAME["telemetry_meter_1m"], ["meter_id"], "energy_wh")


def gpu_rollup(frames: Sequence[GpuFrame]) -> pl.DataFrame:
    long = _long(
        frames,
        {
            "node_id": pl.String(),
            "gpu_index": pl.Int64(),
            "power_w": pl.Float64(),
            "energy_mj": pl.UInt64(),
        },
    )
    return rollup(long, BY_NAME["telemetry_gpu_1m"], ["node_id", "gpu_index"], "energy_mj")


def asic_rollup(frames: Sequence[AsicFrame]) -> pl.DataFrame:
    long = _long(
        frames,
        {
            "miner_id": pl.String(),
            "power_w": pl.Float64(),
            "hashrate_ths": pl.Float64(),
            "state": pl.String(),
        },
    )
    extra = [
        pl.col("hashrate_ths").cast(pl.Decimal(38, 6)).sum().alias("hashrate_sum_ths"),
        (pl.col("state") == "hashing").sum().cast(pl.Int64).alias("hashing_readings"),
    ]
    return rollup(long, BY_NAME["telemetry_asic_1m"], ["miner_id"], None, extra)


_ROLLUPS: dict[str, Callable[[Sequence[Any]], pl.DataFrame]] = {
    "telemetry.meter.v1": meter_rollup,
    "telemetry.gpu.v1": gpu_rollup,
    "telemetry.asic.v1": asic_rollup,
}


def build_frames(items: Iterable[tuple[str, Any]]) -> dict[str, pl.DataFrame]:
    """One frame per table for the accepted messages of a batch (tables without rows are
    left out). Messages of topics the sink does not store, or stores with their Kafka
    position (``POSITIONED``), are ignored."""
    by_topic: dict[str, list[Any]] = {}
    for topic, msg in items:
        if topic in BY_TOPIC and topic not in POSITIONED:
            by_topic.setdefault(topic, []).append(msg)
    out: dict[str, pl.DataFrame] = {}
    for topic, msgs in by_topic.items():
        table = BY_TOPIC[topic]
        out[table.name] = _ROLLUPS[topic](msgs) if topic in _ROLLUPS else _struct_frame(table, msgs)
    return out


def hours_touched(table: Table, frame: pl.DataFrame) -> list[int]:
    """Publication units (UTC hour starts) a frame writes to."""
    hours = (pl.col(table.time_col) // 3600 * 3600).cast(pl.Int64)
    return sorted(frame.select(hours.unique()).to_series().to_list())
