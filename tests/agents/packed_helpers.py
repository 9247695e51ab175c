"""Packed frames as a careless producer might make them, for the hot-path tests."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from schemas.packed import INT64_NULL, MAGIC, PackedFrame, StrColumn, columns


def pack_anyway(doc: dict[str, Any], kind: type[msgspec.Struct]) -> bytes:
    """Pack ``doc`` (a frame's plain values) with none of ``pack``'s refusals: NaN in a float
    column and the int null as a value go through; a value of the wrong kind becomes -1 (or
    ``"?"`` in a text column). The checks under test judge the same bytes, so how they are
    made does not matter."""
    num: dict[str, bytes] = {}
    text: dict[str, StrColumn] = {}
    for name, kind_of in columns(kind).items():
        col = doc.get(name)
        if col is None:
            continue
        if kind_of == "text":
            col = [x if x is None or isinstance(x, str) else "?" for x in col]
            distinct = list(dict.fromkeys(col))
            codes = np.array([distinct.index(x) for x in col], "<u2")
            text[name] = StrColumn(distinct, codes.tobytes())
        elif kind_of == "f8":
            floats = [math.nan if x is None else x if not isinstance(x, str) else -1.0 for x in col]
            num[name] = np.array(floats, "<f8").tobytes()
        else:
            ints = [INT64_NULL if x is None else x if type(x) is int else -1 for x in col]
            num[name] = np.array(ints, "<i8").tobytes()
    scalars = (doc["v"], doc["site_id"], doc["source_id"], doc["ts_s"], doc["seq"])
    return MAGIC + msgspec.msgpack.encode(PackedFrame(*scalars, num, text))
