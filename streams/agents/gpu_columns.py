"""Packed GPU frames, checked and summed a batch at a time: stage 1's hot path.

A batch's frames are checked column by column over the whole batch (one numpy call per
column, not one Python value per reading) and their power summed per frame
(``numpy.add.reduceat``). This is a fast accept only: it accepts no frame that
``Contract.decode`` would refuse (``tests/agents/test_gpu_columns.py`` holds it to that).
Anything it does not accept, the caller decodes frame by frame through the contract, which
says why a frame is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from schemas.bounded import GPU_MAX_W
from schemas.packed import F8, I8, INT64_NULL, PackedFrame, columns
from schemas.telemetry import GpuFrame
from schemas.validation import Limits
from streams.agents.packed_batch import (
    all_used,
    codes_in_range,
    column,
    offsets,
    readings,
    unpack_all,
)
from streams.decisions.power import SETTLEMENT_INTERVAL_S, GpuSums, gpu_counter_sums

_REQUIRED = ("power_w", "gpu_index", "energy_mj", "node_id")
_OPTIONAL_NUM = tuple(n for n in columns(GpuFrame) if n not in _REQUIRED)


def gpu_sums(raws: Sequence[bytes], limits: Limits) -> list[GpuSums] | None:
    """One ``GpuSums`` per packed GPU frame, in order; None unless every frame passes
    every check of the GPU contract (then the caller decodes them one by one)."""
    frames = unpack_all(raws)
    if frames is None:
        return None
    sizes: list[int] = []
    for p in frames:
        n = readings(
            p,
            limits,
            first="power_w",
            num=("gpu_index", "energy_mj"),
            optional_num=_OPTIONAL_NUM,
            text=("node_id",),
        )
        if n is None or None in p.text["node_id"].values:
            return None
        sizes.append(n)
    if not frames:
        return None
    power = column(frames, "power_w", F8)
    if not _columns_ok(frames, power):
        return None
    sums = np.add.reduceat(power, offsets(sizes)).tolist()
    counters = _batch_counter_sums(frames, sizes)
    if counters is None or None in counters:
        return None
    return [
        GpuSums(
            site_id=p.site_id,
            source_id=p.source_id,
            ts_s=p.ts_s,
            seq=p.seq,
            readings=n,
            power_w=s,
            node_ids=p.text["node_id"].values,  # type: ignore[arg-type]  # no None: checked
            counter_wh=c[0],
            counter_sampled_wh=c[1],
            counter_held_max_s=c[2],
        )
        for p, n, s, c in zip(frames, sizes, sums, counters, strict=True)
        if c is not None
    ]


_STEP_COLUMNS = ("energy_step_mj", "step_s", "step_power_w")


def _batch_counter_sums(
    frames: Sequence[PackedFrame], sizes: list[int]
) -> list[tuple[float, float, int] | None] | None:
    """``gpu_counter_sums`` of every frame, a batch at a time when every frame has the step
    columns (the collectors' usual batch), frame by frame in a mixed batch; None when a
    value breaks the contract."""
    present = [n in p.num for p in frames for n in _STEP_COLUMNS]
    if not any(present):
        return [(0.0, 0.0, 0)] * len(frames)
    if not all(present):
        return [_counter_sums(p) for p in frames]
    energy = column(frames, "energy_step_mj", I8)
    span = column(frames, "step_s", F8)
    watts = column(frames, "step_power_w", F8)
    if not len(energy) == len(span) == len(watts) == sum(sizes):
        return None
    null = energy == INT64_NULL
    if null.any():
        if not (null == np.isnan(span)).all() or not (null == np.isnan(watts)).all():
            return None
    elif np.isnan(span).any() or np.isnan(watts).any():
        return None
    # NaN (a null) compares false: these see only the values present.
    if ((energy < 0) & ~null).any() or ((span < 0) | np.isinf(span)).any():
        return None
    if ((watts < 0.0) | (watts > GPU_MAX_W)).any():
        return None
    # The rule of gpu_counter_sums: the whole seconds held, kept unless they straddle a
    # boundary. Per frame: its second and the start of its last second's interval.
    stamps = np.fromiter((p.ts_s for p in frames), F8, len(frames))
    sec = np.floor(stamps)
    first = (sec - 1) // SETTLEMENT_INTERVAL_S * SETTLEMENT_INTERVAL_S
    at = offsets(sizes)
    present_span = np.where(null, np.inf, span)
    low = np.minimum.reduceat(present_span, at)
    with np.errstate(invalid="ignore", over="ignore"):  # nulls are NaN; a huge step is inf
        if (low == np.maximum.reduceat(np.where(null, -np.inf, span), at)).all():
            # The usual batch: every GPU of a frame stepped from the same poll. Per frame.
            start = np.floor(stamps - low + 1e-6)
            held = sec - start
            keep = (held == 0) | (start >= first)
            counter_wh = np.add.reduceat(np.where(null, 0.0, energy), at) * keep / 3.6e6
            sampled_wh = np.add.reduceat(np.where(null, 0.0, watts), at) * held * keep / 3600.0
            held_max = np.where(keep, held, 0.0).astype(I8)
        else:
            start = np.floor(np.repeat(stamps, sizes) - span + 1e-6)
            held = np.repeat(sec, sizes) - start
            keep = (held == 0) | (start >= np.repeat(first, sizes))  # a null is never kept
            counter_wh = np.add.reduceat(energy.astype(F8) * keep, at) / 3.6e6
            sampled_wh = np.add.reduceat(np.where(keep, watts * held, 0.0), at) / 3600.0
            held_max = np.maximum.reduceat(np.where(keep, held, 0.0), at).astype(I8)
    return list(zip(counter_wh.tolist(), sampled_wh.tolist(), held_max.tolist(), strict=True))


def _counter_sums(p: PackedFrame) -> tuple[float, float, int] | None:
    """``gpu_counter_sums`` of a frame's step columns; None when they break the contract
    (the caller then decodes the frame, which says why). Frames without steps are common
    and cost one lookup; those with steps are few hundred values, looped once."""
    present = [n in p.num for n in _STEP_COLUMNS]
    if not any(present):
        return 0.0, 0.0, 0
    if not all(present):
        return None
    energy = np.frombuffer(p.num["energy_step_mj"], I8)
    span = np.frombuffer(p.num["step_s"], F8)
    watts = np.frombuffer(p.num["step_power_w"], F8)
    null = energy == INT64_NULL
    if not (null == np.isnan(span)).all() or not (null == np.isnan(watts)).all():
        return None
    ok = ~null
    e, t, w = energy[ok], span[ok], watts[ok]
    if (e < 0).any() or not ((t >= 0) & np.isfinite(t)).all():
        return None
    if not ((w >= 0.0) & (w <= GPU_MAX_W)).all():
        return None
    return gpu_counter_sums(p.ts_s, e.tolist(), t.tolist(), w.tolist())


def _columns_ok(frames: Sequence[PackedFrame], power: npt.NDArray[np.float64]) -> bool:
    """Every value of every frame (``power``: their power column) within the GPU contract's
    bounds; every node code points at a value and every node value is used (the fold counts
    each node's overhead once)."""
    if not ((power >= 0.0) & (power <= GPU_MAX_W)).all():  # NaN (null) fails too
        return False
    if (column(frames, "gpu_index", I8) == INT64_NULL).any():
        return False
    energy = column(frames, "energy_mj", I8)
    if ((energy < 0) & (energy != INT64_NULL)).any():
        return False
    util = column(frames, "util_pct", F8)
    if ((util < 0.0) | (util > 100.0)).any():  # NaN compares false: null passes
        return False
    if np.isinf(column(frames, "temp_c", F8)).any():
        return False
    instant = column(frames, "power_instant_w", F8)
    if ((instant < 0.0) | (instant > GPU_MAX_W)).any():
        return False
    nodes = [p.text["node_id"] for p in frames]
    return codes_in_range(nodes) and all_used(nodes)
