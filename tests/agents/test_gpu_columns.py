"""Packed GPU frames on stage 1's hot path (``streams.agents.gpu_columns``).

The batch check accepts no frame that the contract refuses, and what it sums is what the
contract's frame sums to; stage 1 gives the same partials and dead letters for a batch sent
packed as for the same batch sent as JSON.
"""

from __future__ import annotations

import base64
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.packed import (
    MAGIC,
    StrColumn,
    pack,
    unpack,
)
from schemas.registry import CONTRACTS
from schemas.telemetry import GpuFrame
from schemas.validation import Limits, Rejection
from streams.agents.gpu_columns import gpu_sums
from streams.agents.messages import Stage1State
from streams.decisions.power import gpu_counter_sums
from tests.agents.packed_helpers import pack_anyway
from tests.agents.test_stage1 import NOW, run

GPU = CONTRACTS["telemetry.gpu.v1"]
LIMITS = Limits(now_s=NOW)


def frame(seq: int = 1, **columns: object) -> GpuFrame:
    doc: dict[str, object] = {
        "site_id": "small",
        "source_id": "rack-1",
        "ts_s": NOW,
        "seq": seq,
        "node_id": ["small-train-00000"] * 4 + ["small-train-00001"] * 4,
        "gpu_index": list(range(8)),
        "power_w": [500.0 + i for i in range(8)],
        "energy_mj": [10**9] * 7 + [None],
        "util_pct": [50.0] * 8,
        "temp_c": [60.0] * 7 + [None],
    }
    doc.update(columns)
    return GpuFrame(**doc)  # type: ignore[arg-type]


def test_sums_are_those_of_the_decoded_frames() -> None:
    frames = [frame(1), frame(2, power_w=[0.0, 5000.0, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5])]
    got = gpu_sums([pack(f) for f in frames], LIMITS)
    assert got is not None
    for g, f in zip(got, frames, strict=True):
        assert g.readings == 8 and g.power_w == pytest.approx(sum(f.power_w), rel=1e-12)
        assert set(g.node_ids) == set(f.node_id)
        assert (g.site_id, g.source_id, g.ts_s, g.seq) == (f.site_id, f.source_id, f.ts_s, f.seq)


_bad = st.sampled_from(
    [math.nan, math.inf, -math.inf, -1.0, -1e-9, 100.5, 5000.5, 1e308, None, -(2**63), -1]
)


@settings(max_examples=300, deadline=None)
@given(
    column=st.sampled_from(
        ["power_w", "energy_mj", "util_pct", "temp_c", "power_instant_w", "gpu_index"]
    ),
    at=st.integers(0, 7),
    value=_bad,
    ts_shift=st.sampled_from([0.0, 0.0, 1e6, -1e7]),
)
def test_the_batch_check_accepts_nothing_the_contract_refuses(
    column: str, at: int, value: object, ts_shift: float
) -> None:
    base = msgspec.to_builtins(frame())
    col = list(base.get(column) or [1.0] * 8)
    col[at] = value
    base[column] = col
    base["ts_s"] = NOW + ts_shift
    raw = pack_anyway(base, GpuFrame)
    verdict = GPU.decode(raw, LIMITS)
    got = gpu_sums([pack(frame()), raw], LIMITS)
    if isinstance(verdict, Rejection):
        assert got is None
    elif got is not None:
        assert isinstance(verdict, GpuFrame)
        assert got[1].power_w == pytest.approx(sum(verdict.power_w), rel=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        {"node_id": StrColumn(["a", "b", "unused"], b"\x00\x00" * 4 + b"\x01\x00" * 4)},
        {"node_id": StrColumn(["a"], b"\x00\x00" * 7)},
        {},
    ],
    ids=["an unused node id", "codes too short", "no node ids"],
)
def test_frames_the_batch_check_does_not_take_go_to_the_contract(
    text: dict[str, StrColumn],
) -> None:
    p = unpack(pack(frame()))
    p.text = text
    assert gpu_sums([MAGIC + msgspec.msgpack.encode(p)], LIMITS) is None


def test_stage1_gives_the_same_partials_and_letters_packed_as_json() -> None:
    frames = [frame(1), frame(2), frame(1), frame(3, ts_s=NOW + 1.0)]
    bad = frame(4, power_w=[-5.0] * 8)
    as_json = [msgspec.json.encode(f) for f in frames] + [msgspec.json.encode(bad)]
    as_packed = [pack(f) for f in frames] + [pack_anyway(msgspec.to_builtins(bad), GpuFrame)]
    _, out_json = run(Stage1State(), list(as_json))
    _, out_packed = run(Stage1State(), list(as_packed))
    assert out_packed.accepted == out_json.accepted == 4
    assert out_packed.readings == out_json.readings == 32
    assert out_packed.duplicate_frames == out_json.duplicate_frames == 1
    assert out_packed.rejected == out_json.rejected == {"validation": 1}
    (letter,) = out_packed.letters
    assert base64.b64decode(letter.value_b64) == as_packed[-1]
    assert letter.reason == out_json.letters[0].reason
    key = ("ts_s", "readings", "frames", "max_reading_ts_s")
    assert [[getattr(p, k) for k in key] for p in out_packed.partials] == [
        [getattr(p, k) for k in key] for p in out_json.partials
    ]
    for a, b in zip(out_packed.partials, out_json.partials, strict=True):
        assert a.ai_w == pytest.approx(b.ai_w, rel=1e-12)


def test_a_good_packed_batch_takes_the_hot_path() -> None:
    _, out = run(Stage1State(), [pack(frame(1)), pack(frame(2))])
    assert out.accepted == 2 and out.letters == []
    assert gpu_sums([pack(frame(1)), pack(frame(2))], LIMITS) is not None


STEPS = {
    "energy_step_mj": [3_600_000] * 7 + [None],
    "step_s": [5.0] * 7 + [None],
    "step_power_w": [700.0] * 7 + [None],
}


def test_counter_steps_sum_packed_as_the_contract_frame_does() -> None:
    f = frame(1, ts_s=NOW - NOW % 900 - 450, **STEPS)  # mid-interval: no step straddles
    (got,) = gpu_sums([pack(f)], LIMITS) or []
    assert f.energy_step_mj is not None and f.step_s is not None and f.step_power_w is not None
    want = gpu_counter_sums(f.ts_s, f.energy_step_mj, f.step_s, f.step_power_w)
    assert (got.counter_wh, got.counter_sampled_wh, got.counter_held_max_s) == want
    assert want[0] == pytest.approx(7.0)  # 7 GPUs x 3.6e6 mJ = 7 Wh


@settings(max_examples=200, deadline=None)
@given(
    column=st.sampled_from(["energy_step_mj", "step_s", "step_power_w"]),
    at=st.integers(0, 7),
    value=_bad,
)
def test_the_batch_check_takes_no_counter_step_the_contract_refuses(
    column: str, at: int, value: object
) -> None:
    base = msgspec.to_builtins(frame(1, **STEPS))
    base[column] = [*base[column][:at], value, *base[column][at + 1 :]]
    raw = pack_anyway(base, GpuFrame)
    verdict = GPU.decode(raw, LIMITS)
    got = gpu_sums([raw], LIMITS)
    if isinstance(verdict, Rejection):
        assert got is None
    elif got is not None:
        assert isinstance(verdict, GpuFrame)
        want = gpu_counter_sums(verdict.ts_s, verdict.energy_step_mj or [],
                                verdict.step_s or [], verdict.step_power_w or [])
        assert got[0].counter_wh == pytest.approx(want[0], rel=1e-12)
        assert got[0].counter_sampled_wh == pytest.approx(want[1], rel=1e-12)


def test_a_frame_with_only_some_step_columns_is_refused() -> None:
    f = frame(1, energy_step_mj=STEPS["energy_step_mj"])
    verdict = GPU.decode(msgspec.json.encode(f), LIMITS)
    assert isinstance(verdict, Rejection) and "come together" in verdict.reason
    assert gpu_sums([pack(f)], LIMITS) is None


@pytest.mark.parametrize("mixed", [False, True], ids=["all with steps", "some without"])
def test_a_batch_of_steps_sums_as_each_frame_alone(mixed: bool) -> None:
    # Stamps inside an interval, just after a boundary (its last step closes the previous
    # interval) and 3 s after one (5 s steps straddle it: left to the samples).
    boundary = NOW - NOW % 900 - 900  # an interval boundary in the past, whatever NOW is
    stamps = [NOW, boundary + 0.4, boundary + 3.4]
    frames = [frame(i, ts_s=ts, **STEPS) for i, ts in enumerate(stamps)]
    # GPUs that stepped from different polls (one missed a poll): summed GPU by GPU.
    uneven = {**STEPS, "step_s": [5.0, 10.0, 1.0, 5.0, 5.0, 5.0, 5.0, None]}
    frames.append(frame(7, ts_s=boundary + 5.4, **uneven))
    if mixed:
        frames.append(frame(9, ts_s=NOW))
    got = gpu_sums([pack(f) for f in frames], LIMITS)
    assert got is not None
    for g, f in zip(got, frames, strict=True):
        want = gpu_counter_sums(f.ts_s, f.energy_step_mj or [], f.step_s or [],
                                f.step_power_w or [])
        assert g.counter_wh == pytest.approx(want[0], rel=1e-12)
        assert g.counter_sampled_wh == pytest.approx(want[1], rel=1e-12)
        assert g.counter_held_max_s == want[2]
    assert got[2].counter_wh == 0.0 and got[1].counter_held_max_s == 5
