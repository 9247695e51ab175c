"""The bounded fast path (``schemas.bounded``) gives exactly what the full checks give.

For frames whose values are drawn around every bound (in range, at the edges, beyond them,
huge, negative, missing), ``Contract.decode`` (fast path first) and the full path alone
must return the same message or the same rejection, kind and reason.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.examples import examples
from schemas.registry import CONTRACTS
from schemas.validation import Contract, Limits, Rejection
from tests.hostile.corpus import CORPUS, NOW

LIMITS = Limits(now_s=NOW)
TELEMETRY = ["telemetry.gpu.v1", "telemetry.asic.v1", "telemetry.meter.v1"]

_edges = st.sampled_from(
    [0.0, -0.0, -1e-9, 1e-9, 100.0, 100.0001, 5_000.0, 5_000.5, 10_000.0, 10_001.0]
    + [50_000.0, 50_001.0, 2e9, 2.000001e9, -2e9, -2.1e9, 1e308, -1e308, 2**63, 2**64 - 1]
    + [2**64, -1, 1e400, -1e400]
)
_value = _edges | st.floats(allow_nan=False) | st.integers() | st.none()


def _same(topic: str, raw: bytes) -> None:
    contract = CONTRACTS[topic]
    fast = contract.decode(raw, LIMITS)
    full = Contract(contract.type, contract.checks).decode(raw, LIMITS)
    if isinstance(full, Rejection):
        assert fast == full
    else:
        assert not isinstance(fast, Rejection), fast
        assert msgspec.to_builtins(fast) == msgspec.to_builtins(full)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), topic=st.sampled_from(TELEMETRY))
def test_fast_path_agrees_with_the_full_checks(data: st.DataObject, topic: str) -> None:
    doc = msgspec.to_builtins(examples(NOW)[topic])
    columns = [k for k, v in doc.items() if isinstance(v, list) and v and not isinstance(v[0], str)]
    for name in data.draw(st.lists(st.sampled_from(columns), min_size=1, max_size=3)):
        doc[name] = data.draw(st.lists(_value, min_size=len(doc[name]), max_size=len(doc[name])))
    _same(topic, msgspec.json.encode(doc))


@pytest.mark.parametrize(("name", "topic", "raw", "kind"), CORPUS, ids=[c[0] for c in CORPUS])
def test_fast_path_agrees_on_the_hostile_corpus(
    name: str, topic: str, raw: bytes | None, kind: str
) -> None:
    if raw is not None and topic in TELEMETRY:
        _same(topic, raw)


def test_a_good_frame_takes_the_fast_path() -> None:
    raw = msgspec.json.encode(examples(NOW)["telemetry.gpu.v1"])
    assert CONTRACTS["telemetry.gpu.v1"]._fast_decode(raw, LIMITS) is not None
