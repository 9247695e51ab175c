"""Packed ASIC frames, checked and summed a batch at a time: stage 1's hot path.

As ``gpu_columns`` does for GPUs: the batch's columns are checked against the ASIC contract
in numpy, and each one-model frame becomes an ``AsicSums`` (power reported and missing,
hashrate, the coolest and hottest values the miner alerts look at) with no Python value per
reading. A frame of several models is handed over whole (its power is estimated per
model). A fast accept only: anything it does not take, the caller decodes frame by frame
through the contract (``tests/agents/test_asic_columns.py`` holds it to that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import get_args

import numpy as np
import numpy.typing as npt

from schemas.bounded import ASIC_MAX_THS, ASIC_MAX_W
from schemas.packed import CODE_DTYPE, F8, PackedFrame, to_fields
from schemas.telemetry import AsicFrame, AsicState
from schemas.validation import Limits
from streams.agents.packed_batch import codes_in_range, column, offsets, readings, unpack_all
from streams.decisions.power import AsicSums

_STATES = frozenset(get_args(AsicState))
_TEXT = ("miner_id", "model", "state")


def asic_sums(raws: Sequence[bytes], limits: Limits) -> list[AsicSums | AsicFrame] | None:
    """Per packed ASIC frame, in order, its sums (or, of several models, the frame); None
    unless every frame passes every check of the ASIC contract."""
    frames = unpack_all(raws)
    if not frames:
        return None
    sizes: list[int] = []
    for p in frames:
        n = readings(
            p,
            limits,
            first="hashrate_ths",
            num=("power_w", "temp_c", "fan_rpm"),
            optional_num=("power_limit_w",),
            text=_TEXT,
            optional_text=("error",),
        )
        if n is None or not _text_ok(p):
            return None
        sizes.append(n)
    hashrate = column(frames, "hashrate_ths", F8)
    power = column(frames, "power_w", F8)
    temp = column(frames, "temp_c", F8)
    if not (
        ((hashrate >= 0.0) & (hashrate <= ASIC_MAX_THS)).all()  # NaN (null) fails too
        and not ((power < 0.0) | (power > ASIC_MAX_W)).any()  # NaN compares false: null
        and not np.isinf(temp).any()
        and codes_in_range([p.text[t] for p in frames for t in _TEXT])
        and codes_in_range([p.text["error"] for p in frames if "error" in p.text])
    ):
        return None
    at = offsets(sizes)
    missing = np.isnan(power)
    hashing = _hashing(frames, sizes)
    sums = zip(
        np.add.reduceat(hashrate, at).tolist(),
        np.add.reduceat(np.where(missing, 0.0, power), at).tolist(),
        np.add.reduceat(missing.astype(np.int64), at).tolist(),
        np.add.reduceat(np.where(missing, hashrate, 0.0), at).tolist(),
        np.minimum.reduceat(np.where(hashing, hashrate, np.inf), at).tolist(),
        np.fmax.reduceat(temp, at).tolist(),  # fmax: NaN (no temperature) only if all are
        strict=True,
    )
    out: list[AsicSums | AsicFrame] = []
    for p, n, (h, rep, miss, miss_h, low, hot) in zip(frames, sizes, sums, strict=True):
        models = p.text["model"].values
        if len(models) != 1:
            out.append(_full(p)())
            continue
        out.append(
            AsicSums(
                site_id=p.site_id,
                source_id=p.source_id,
                ts_s=p.ts_s,
                seq=p.seq,
                readings=n,
                model=models[0],  # type: ignore[arg-type]  # no None: _text_ok
                hashrate_ths=h,
                reported_w=rep,
                missing_w=miss,
                missing_hashrate_ths=miss_h,
                min_hashing_ths=low,
                max_temp_c=None if hot != hot else hot,
                miner_ids=p.text["miner_id"].values,  # type: ignore[arg-type]  # no None
                full=_full(p),
            )
        )
    return out


def _hashing(frames: Sequence[PackedFrame], sizes: Sequence[int]) -> npt.NDArray[np.bool_]:
    """Per reading: is the miner in state ``hashing``."""
    code = [
        p.text["state"].values.index("hashing") if "hashing" in p.text["state"].values else -1
        for p in frames
    ]
    states = np.frombuffer(b"".join(p.text["state"].codes for p in frames), CODE_DTYPE)
    hashing: npt.NDArray[np.bool_] = states == np.repeat(np.array(code, np.int64), sizes)
    return hashing


def _text_ok(p: PackedFrame) -> bool:
    """Ids and models are never missing; states are the contract's. (Values are str or
    None by the envelope's type; ``error`` may be either.)"""
    text = p.text
    return (
        None not in text["miner_id"].values
        and None not in text["model"].values
        and _STATES.issuperset(text["state"].values)
    )


def _full(p: PackedFrame) -> Callable[[], AsicFrame]:
    """The whole frame, built when asked (its values are already checked)."""
    return lambda: AsicFrame(**to_fields(p, AsicFrame))
