"""Every hostile input is rejected with a reason and never raises; decoders survive fuzzing."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.registry import CONTRACTS
from schemas.validation import Limits, Rejection
from tests.hostile.corpus import CORPUS, NOW

LIMITS = Limits(now_s=NOW, max_frame_bytes=1_048_576)


def test_corpus_covers_at_least_thirty_kinds() -> None:
    assert len({name for name, *_ in CORPUS}) == len(CORPUS) >= 30


@pytest.mark.parametrize(("name", "topic", "raw", "kind"), CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_input_is_rejected_with_a_reason(
    name: str, topic: str, raw: bytes | None, kind: str
) -> None:
    result = CONTRACTS[topic].decode(raw, LIMITS)
    assert isinstance(result, Rejection), f"{name} was accepted: {result}"
    assert result.kind == kind, result.reason
    assert len(result.reason) > 10


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(sorted(CONTRACTS)), raw=st.binary(max_size=2048))
def test_random_bytes_never_raise(topic: str, raw: bytes) -> None:
    result = CONTRACTS[topic].decode(raw, LIMITS)
    assert isinstance(result, Rejection | msgspec.Struct)


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from(sorted(CONTRACTS)), doc=_json)
def test_random_json_never_raises(topic: str, doc: object) -> None:
    result = CONTRACTS[topic].decode(msgspec.json.encode(doc), LIMITS)
    assert isinstance(result, Rejection | msgspec.Struct)


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    topic=st.sampled_from(["telemetry.gpu.v1", "telemetry.asic.v1", "telemetry.meter.v1"]),
)
def test_mutated_valid_frames_never_raise(data: st.DataObject, topic: str) -> None:
    from schemas.examples import examples

    doc = msgspec.to_builtins(examples(NOW)[topic])
    field = data.draw(st.sampled_from(sorted(doc)))
    doc[field] = data.draw(_json)
    result = CONTRACTS[topic].decode(msgspec.json.encode(doc), LIMITS)
    assert isinstance(result, Rejection | msgspec.Struct)
