"""Packed telemetry frames: the same contracts as the JSON frames, in binary columns.

A JSON frame costs a Python value per reading to decode (msgspec builds a float for each
number: 90 of stage 1's 200 ms per site-second at the reference site are GPU frames). A
packed frame carries each numeric column as one little-endian array, which a consumer maps
with ``numpy.frombuffer`` and checks and sums a batch at a time, with no value per reading.

Layout (``MAGIC``, then one msgpack array, see ``PackedFrame``):

- the frame's scalar fields (``v``, ``site_id``, ``source_id``, ``ts_s``, ``seq``);
- ``num``: column name -> bytes. ``float`` columns are ``<f8`` with NaN for a missing value
  (JSON frames cannot carry NaN, so NaN means null and nothing else); ``int`` columns are
  ``<i8`` with ``INT64_NULL`` for a missing value;
- ``text``: column name -> ``[distinct values, codes]``, codes ``<u2`` indexes into the
  distinct values, one per reading (a GPU frame names each of its 32 nodes once, not 256
  times).

Field names, types, bounds and checks are the JSON contract's: ``Contract.decode`` reads
both encodings and gives the same typed frame, or the same rejection, for the same
readings. Optional columns absent from ``num``/``text`` are None; unknown ones are ignored,
as unknown JSON fields are. A producer picks the encoding (``--encoding packed``); a
topic may carry both.
"""

from __future__ import annotations

import array
import math
import sys
import types
import typing
from functools import cache
from typing import Any

import msgspec
import numpy as np

from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame
from streams.errors import TerminalError

MAGIC = b"\xc1SW"
"""0xC1 is never used by msgpack and cannot start JSON: no other message starts so."""
INT64_NULL = -(2**63)
CODE_DTYPE = np.dtype("<u2")
F8 = np.dtype("<f8")
I8 = np.dtype("<i8")
SCALARS = ("v", "site_id", "source_id", "ts_s", "seq")

Frame = MeterFrame | GpuFrame | AsicFrame
PACKABLE: tuple[type[msgspec.Struct], ...] = (MeterFrame, GpuFrame, AsicFrame)


class StrColumn(msgspec.Struct, array_like=True):
    values: list[str | None]
    """The column's distinct values."""
    codes: bytes
    """``<u2`` per reading: index into ``values``."""


class PackedFrame(msgspec.Struct, array_like=True):
    v: int
    site_id: str
    source_id: str
    ts_s: float
    seq: int
    num: dict[str, bytes]
    text: dict[str, StrColumn]


class PackError(TerminalError, ValueError):
    """A frame that the packed encoding cannot carry (say so; send it as JSON)."""


def is_packed(raw: bytes) -> bool:
    return raw[:3] == MAGIC


@cache
def columns(kind: type[msgspec.Struct]) -> dict[str, str]:
    """Column name -> ``"f8"``, ``"i8"`` or ``"text"`` for a frame contract."""
    hints = typing.get_type_hints(kind)
    out: dict[str, str] = {}
    for name in kind.__struct_fields__:
        if name in SCALARS:
            continue
        t = hints[name]
        if _union(t):  # ``list[...] | None``: an optional column
            t = next(a for a in typing.get_args(t) if a is not type(None))
        (elem,) = typing.get_args(t)
        if _union(elem):
            elem = next(a for a in typing.get_args(elem) if a is not type(None))
        out[name] = "f8" if elem is float else "i8" if elem is int else "text"
    return out


def _union(t: Any) -> bool:
    return typing.get_origin(t) in (typing.Union, types.UnionType)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PackedFrame)


def pack(frame: Frame) -> bytes:
    """The packed bytes of a typed frame (raises ``PackError`` for what it cannot carry)."""
    num: dict[str, bytes] = {}
    text: dict[str, StrColumn] = {}
    for name, kind in columns(type(frame)).items():
        col = getattr(frame, name)
        if col is None:
            continue
        if kind == "text":
            text[name] = _text(name, col)
        else:
            num[name] = (_floats if kind == "f8" else _ints)(name, col).tobytes()
    body = PackedFrame(frame.v, frame.site_id, frame.source_id, frame.ts_s, frame.seq, num, text)
    return MAGIC + _encoder.encode(body)


def _text(name: str, col: list[Any]) -> StrColumn:
    distinct = list(dict.fromkeys(col))
    if len(distinct) > 65_536:
        raise PackError(f"{name} has {len(distinct)} distinct values (limit 65,536)")
    index = {v: i for i, v in enumerate(distinct)}
    codes = np.fromiter(map(index.__getitem__, col), CODE_DTYPE, len(col))
    return StrColumn(distinct, codes.tobytes())


def _floats(name: str, col: list[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    nulls = None in col
    if nulls and any(x != x for x in col if x is not None):
        raise PackError(f"{name} holds NaN, which the packed encoding reads as null")
    a = np.array(col, F8)  # None becomes NaN
    if not nulls and np.isnan(a).any():
        raise PackError(f"{name} holds NaN, which the packed encoding reads as null")
    return a


def _ints(name: str, col: list[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    if INT64_NULL in col:
        raise PackError(f"{name} holds {INT64_NULL}, which the packed encoding reads as null")
    a = np.array([INT64_NULL if x is None else x for x in col] if None in col else col)
    if not col:
        return np.zeros(0, I8)
    if a.dtype.kind not in "iu":
        raise PackError(f"{name} holds values that are not int64 integers (send it as JSON)")
    if a.dtype.kind == "u" and a.max() > np.iinfo(I8).max:
        raise PackError(f"{name} holds an integer outside int64 (send it as JSON)")
    return a.astype(I8)


def unpack(raw: bytes) -> PackedFrame:
    """The envelope of a packed frame; raises ``msgspec.DecodeError``/``ValidationError``."""
    return _decoder.decode(memoryview(raw)[len(MAGIC) :])


def to_fields(p: PackedFrame, kind: type[msgspec.Struct]) -> dict[str, Any]:
    """The frame as the plain values of its JSON form (lists, None for missing values), to
    be typed and checked as a JSON frame is. Raises ``ValueError`` for a broken column.

    Plain ``array`` and list calls, not numpy: at 150-256 values a column, numpy's fixed
    cost per call is most of the time."""
    out: dict[str, Any] = {s: getattr(p, s) for s in SCALARS}
    for name, kind_of in columns(kind).items():
        if kind_of == "text":
            tc = p.text.get(name)
            if tc is not None:
                out[name] = _expand(name, tc)
            continue
        data = p.num.get(name)
        if data is None:
            continue
        if len(data) % 8:
            raise ValueError(f"column {name}: {len(data)} bytes, not a whole number of values")
        if kind_of == "f8":
            values = _array("d", data)
            total = sum(values)
            if total != total and any(map(math.isnan, values)):  # NaN in the sum: look
                values = [None if x != x else x for x in values]
        else:
            values = _array("q", data)
            if INT64_NULL in values:
                values = [None if x == INT64_NULL else x for x in values]
        out[name] = values
    return out


def _array(typecode: str, data: bytes) -> list[Any]:
    a = array.array(typecode, data)
    if sys.byteorder != "little":
        a.byteswap()
    return a.tolist()


def _expand(name: str, tc: StrColumn) -> list[str | None]:
    """One value per reading. A column of distinct values in order (ids) is the values."""
    if len(tc.codes) % 2:
        raise ValueError(f"column {name}: {len(tc.codes)} bytes of codes")
    codes = _array("H", tc.codes)
    values = tc.values
    if len(values) == len(codes) and codes == list(range(len(codes))):
        return list(values)
    if codes and max(codes) >= len(values):
        raise ValueError(f"column {name}: code {max(codes)} past its {len(values)} values")
    if len(values) == 1:
        return values * len(codes)
    return list(map(values.__getitem__, codes))
