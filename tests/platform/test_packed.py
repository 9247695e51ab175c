"""The packed encoding (``schemas.packed``) carries the JSON contracts, no more and no less.

The same frame, packed or JSON, decodes to the same typed frame or to the same rejection;
what the packed encoding cannot carry is refused when packing, not mangled.
"""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.examples import examples
from schemas.packed import INT64_NULL, MAGIC, PackError, StrColumn, is_packed, pack, unpack
from schemas.registry import CONTRACTS
from schemas.telemetry import GpuFrame
from schemas.validation import Limits, Rejection
from streams.bench.stage1 import reference_frames
from tests.hostile.corpus import NOW

LIMITS = Limits(now_s=NOW)
TELEMETRY = ["telemetry.gpu.v1", "telemetry.asic.v1", "telemetry.meter.v1"]


def test_simulated_frames_decode_the_same_packed_or_json() -> None:
    _site, msgs, _readings = reference_frames(0.02, 2)
    limits = Limits(now_s=msgspec.json.decode(msgs[0][2])["ts_s"])
    for topic, _key, raw in msgs:
        contract = CONTRACTS[topic]
        frame = contract.decode(raw, limits)
        assert not isinstance(frame, Rejection), frame
        packed = pack(frame)
        assert is_packed(packed) and not is_packed(raw)
        assert contract.decode(packed, limits) == frame


@pytest.mark.parametrize("topic", TELEMETRY)
def test_missing_values_and_optional_columns_survive(topic: str) -> None:
    frame = examples(NOW)[topic]
    got = CONTRACTS[topic].decode(pack(frame), LIMITS)
    assert got == frame


def _gpu(**columns: object) -> GpuFrame:
    base = msgspec.to_builtins(examples(NOW)["telemetry.gpu.v1"])
    base.update(columns)
    return GpuFrame(**base)


_edges = st.sampled_from(
    [0.0, -0.0, -1e-9, 100.0, 100.0001, 5_000.0, 5_000.5, 1e308, -1e308, 2**63 - 1, -1, 0, 7]
)
# Finite only: msgspec writes infinity as JSON null (infinities are tested below).
_finite = st.floats(allow_nan=False, allow_infinity=False)
_value = _edges | _finite | st.integers(-(2**63) + 1, 2**63 - 1) | st.none()


@settings(max_examples=300, deadline=None)
@given(data=st.data(), topic=st.sampled_from(TELEMETRY))
def test_packed_and_json_give_the_same_frame_or_the_same_rejection(
    data: st.DataObject, topic: str
) -> None:
    contract = CONTRACTS[topic]
    doc = msgspec.to_builtins(examples(NOW)[topic])
    columns = [k for k, v in doc.items() if isinstance(v, list) and v and not isinstance(v[0], str)]
    for name in data.draw(st.lists(st.sampled_from(columns), min_size=1, max_size=3)):
        doc[name] = data.draw(st.lists(_value, min_size=len(doc[name]), max_size=len(doc[name])))
    frame = contract.type(**doc)
    try:
        packed = pack(frame)
    except PackError:
        return  # e.g. a float in an int column: the packed encoding refuses to carry it
    raw_json = msgspec.json.encode(frame)
    from_json = contract.decode(raw_json, LIMITS)
    from_packed = contract.decode(packed, LIMITS)
    if isinstance(from_json, Rejection) or isinstance(from_packed, Rejection):
        assert isinstance(from_json, Rejection) and isinstance(from_packed, Rejection)
        assert from_packed.kind == from_json.kind
        if from_json.kind == "validation":
            assert from_packed.reason == from_json.reason
    else:
        assert msgspec.to_builtins(from_packed) == msgspec.to_builtins(from_json)


@pytest.mark.parametrize(
    ("columns", "says"),
    [
        ({"power_w": [math.nan] * 8}, "NaN"),
        ({"energy_mj": [INT64_NULL] * 8}, "null"),
        ({"energy_mj": [2**64 - 1] * 8}, "int64"),
        ({"gpu_index": [0.5] * 8}, "int64"),
    ],
)
def test_what_the_packed_encoding_cannot_carry_is_refused(
    columns: dict[str, object], says: str
) -> None:
    with pytest.raises(PackError, match=says):
        pack(_gpu(**columns))


@pytest.mark.parametrize("column", ["power_w", "temp_c"])
def test_infinity_is_rejected_naming_its_column(column: str) -> None:
    # JSON cannot carry infinity except as an out-of-range literal, which it also rejects.
    got = CONTRACTS["telemetry.gpu.v1"].decode(pack(_gpu(**{column: [math.inf] * 2})), LIMITS)
    assert got == Rejection("validation", f"{column}[0] is inf, not a finite number")


def _repack(raw: bytes, **changes: object) -> bytes:
    p = unpack(raw)
    for k, v in changes.items():
        setattr(p, k, v)
    return MAGIC + msgspec.msgpack.encode(p)


def _with_num(raw: bytes, name: str, data: bytes | None) -> bytes:
    p = unpack(raw)
    num = dict(p.num)
    if data is None:
        num.pop(name)
    else:
        num[name] = data
    return _repack(raw, num=num)


GOOD = pack(examples(NOW)["telemetry.gpu.v1"])


@pytest.mark.parametrize(
    ("raw", "kind", "says"),
    [
        (GOOD[:-5], "schema", "packed GpuFrame"),
        (MAGIC + b"\x93\x01\x02", "schema", "packed GpuFrame"),
        (_with_num(GOOD, "power_w", b"\x00" * 7), "schema", "whole number"),
        (_with_num(GOOD, "power_w", None), "schema", "power_w"),
        (_with_num(GOOD, "power_w", b"\x00" * 8), "validation", "column power_w has 1"),
        (_repack(GOOD, v=2), "version", "v=2"),
        (_repack(GOOD, text={"node_id": StrColumn(["a"], b"\x05\x00" * 8)}), "schema", "past"),
        (_repack(GOOD, text={"node_id": StrColumn([None], b"\x00\x00" * 8)}), "schema", "node_id"),
    ],
)
def test_broken_packed_frames_are_rejected_with_a_reason(raw: bytes, kind: str, says: str) -> None:
    got = CONTRACTS["telemetry.gpu.v1"].decode(raw, LIMITS)
    assert isinstance(got, Rejection) and got.kind == kind and says in got.reason, got


def test_a_packed_message_on_a_topic_without_a_packed_encoding_is_rejected() -> None:
    got = CONTRACTS["grid.prices.v1"].decode(GOOD, LIMITS)
    assert isinstance(got, Rejection) and "no packed encoding" in got.reason
