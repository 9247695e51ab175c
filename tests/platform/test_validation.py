"""Bad input is rejected with a reason, never raised; good input decodes."""

from __future__ import annotations

import json
import time

import msgspec
import pytest

from schemas.examples import examples
from schemas.registry import CONTRACTS
from schemas.validation import Limits, Rejection

NOW = 1_760_000_000.0
LIMITS = Limits(now_s=NOW, max_frame_bytes=64_000)


def _gpu(**changes: object) -> bytes:
    base = msgspec.to_builtins(examples(NOW)["telemetry.gpu.v1"])
    base.update(changes)
    return json.dumps(base, allow_nan=True).encode()


def _price(**changes: object) -> bytes:
    base = msgspec.to_builtins(examples(NOW)["grid.prices.v1"])
    base.update(changes)
    return json.dumps(base, allow_nan=True).encode()


CASES = [
    ("telemetry.gpu.v1", b"\x00\xff garbage", "not_json", "not valid JSON"),
    ("telemetry.gpu.v1", b'{"v":1,', "not_json", "truncated"),
    ("telemetry.gpu.v1", b"[1,2,3]", "schema", "Expected `object`"),
    ("telemetry.gpu.v1", _gpu(power_w="lots"), "schema", "power_w"),
    ("telemetry.gpu.v1", _gpu(seq=None), "schema", "seq"),
    ("telemetry.gpu.v1", b'{"v":1,"site_id":"s"}', "schema", "missing required field"),
    ("telemetry.gpu.v1", _gpu(power_w=[float("nan"), 1.0]), "not_json", "JSON"),
    ("telemetry.gpu.v1", _gpu().replace(b"612.5", b"1e400"), "schema", "out of range"),
    ("telemetry.gpu.v1", _gpu(power_w=[-5.0, 1.0]), "validation", "power_w has -5.0"),
    ("telemetry.gpu.v1", _gpu(power_w=[1e9, 1.0]), "validation", "outside"),
    ("telemetry.gpu.v1", _gpu(ts_s=NOW + 86_400), "validation", "in the future"),
    ("telemetry.gpu.v1", _gpu(ts_s=NOW - 30 * 86_400), "validation", "in the past"),
    ("telemetry.gpu.v1", _gpu(v=2), "version", "v=2"),
    ("telemetry.gpu.v1", _gpu(power_w=[1.0]), "validation", "column power_w has 1"),
    (
        "telemetry.gpu.v1",
        _gpu(
            node_id=[],
            gpu_index=[],
            power_w=[],
            energy_mj=[],
            util_pct=[],
            temp_c=[],
            power_limit_w=[],
        ),
        "validation",
        "no readings",
    ),
    ("telemetry.gpu.v1", b" " * 70_000, "oversized", "70000 bytes"),
    ("telemetry.gpu.v1", None, "schema", "tombstone"),
    ("grid.prices.v1", _price(price_usd_per_mwh=50_000.0), "validation", "outside"),
    ("grid.prices.v1", _price(interval_end_s=0.0), "validation", "not after"),
]


@pytest.mark.parametrize(("topic", "raw", "kind", "reason"), CASES)
def test_rejections_have_kind_and_reason(topic: str, raw: bytes, kind: str, reason: str) -> None:
    result = CONTRACTS[topic].decode(raw, LIMITS)
    assert isinstance(result, Rejection), result
    assert result.kind == kind
    assert reason in result.reason


@pytest.mark.parametrize("topic", sorted(CONTRACTS))
def test_every_example_decodes_to_itself(topic: str) -> None:
    message = examples(time.time())[topic]
    decoded = CONTRACTS[topic].decode(msgspec.json.encode(message), Limits(now_s=time.time()))
    assert decoded == message


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    raw = _gpu(firmware_build="r550.54")
    assert not isinstance(CONTRACTS["telemetry.gpu.v1"].decode(raw, LIMITS), Rejection)
