"""What the packed hot paths (``gpu_columns``, ``asic_columns``) share: a batch of packed
frames as whole-batch numpy columns, and the checks every packed frame needs.

Each check is a fast accept only: False sends the batch to ``Contract.decode``, frame by
frame, which says why a frame is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from schemas.base import SCHEMA_VERSION
from schemas.packed import CODE_DTYPE, PackedFrame, StrColumn, unpack
from schemas.validation import Limits, timestamp_problem


def unpack_all(raws: Sequence[bytes]) -> list[PackedFrame] | None:
    try:
        return [unpack(r) for r in raws]
    except (msgspec.MsgspecError, ValueError):
        return None


def readings(
    p: PackedFrame,
    limits: Limits,
    *,
    first: str,
    num: Sequence[str],
    optional_num: Sequence[str] = (),
    text: Sequence[str],
    optional_text: Sequence[str] = (),
) -> int | None:
    """The frame's number of readings (the length of column ``first``) if its version and
    time are good and every column is there when required and of that length."""
    if p.v != SCHEMA_VERSION or timestamp_problem("ts_s", p.ts_s, limits):
        return None
    head = p.num.get(first)
    if not head or len(head) % 8:
        return None
    n = len(head) // 8
    for name in num:
        col = p.num.get(name)
        if col is None or len(col) != 8 * n:
            return None
    for name in optional_num:
        col = p.num.get(name)
        if col is not None and len(col) != 8 * n:
            return None
    for name in text:
        tc = p.text.get(name)
        if tc is None or len(tc.codes) != CODE_DTYPE.itemsize * n:
            return None
    for name in optional_text:
        tc = p.text.get(name)
        if tc is not None and len(tc.codes) != CODE_DTYPE.itemsize * n:
            return None
    return n


def offsets(sizes: Sequence[int]) -> npt.NDArray[np.int64]:
    """Start of each frame in the batch's columns."""
    out = np.zeros(len(sizes), np.int64)
    np.cumsum(sizes[:-1], out=out[1:])
    return out


def column(frames: Sequence[PackedFrame], name: str, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Column ``name`` of every frame that has it, end to end."""
    return np.frombuffer(b"".join(p.num[name] for p in frames if name in p.num), dtype)


def codes_in_range(cols: Sequence[StrColumn]) -> bool:
    """Every code of every text column points at one of its column's values."""
    counts = np.fromiter((len(c.values) for c in cols), np.int64, len(cols))
    codes = np.frombuffer(b"".join(c.codes for c in cols), CODE_DTYPE)
    per_reading = np.repeat(counts, [len(c.codes) // CODE_DTYPE.itemsize for c in cols])
    return not (codes >= per_reading).any()


def all_used(cols: Sequence[StrColumn]) -> bool:
    """Every value of every text column is pointed at (codes already in range)."""
    counts = np.fromiter((len(c.values) for c in cols), np.int64, len(cols))
    bases = offsets(counts.tolist())
    codes = np.frombuffer(b"".join(c.codes for c in cols), CODE_DTYPE).astype(np.int64)
    sizes = [len(c.codes) // CODE_DTYPE.itemsize for c in cols]
    used = np.bincount(codes + np.repeat(bases, sizes), minlength=int(counts.sum()))
    return bool((used > 0).all())
