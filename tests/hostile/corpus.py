"""A corpus of hostile inputs, one per kind, each with the rejection kind it must get."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from schemas.examples import examples

NOW = 1_760_000_000.0


def _with(topic: str, now: float = NOW, **changes: Any) -> bytes:
    base = msgspec.to_builtins(examples(now)[topic])
    base.update(changes)
    return json.dumps(base, allow_nan=True).encode()


def _gpu(now: float = NOW, **changes: Any) -> bytes:
    return _with("telemetry.gpu.v1", now, **changes)


def corpus(now: float = NOW) -> list[tuple[str, str, bytes | None, str]]:
    """(name, topic, raw bytes or None, expected rejection kind), stamped around ``now``."""
    good = _gpu(now)
    return [
        ("not-json", "telemetry.gpu.v1", b"hello, kafka", "not_json"),
        ("truncated", "telemetry.gpu.v1", good[: len(good) // 2], "not_json"),
        ("empty", "telemetry.gpu.v1", b"", "not_json"),
        ("tombstone", "telemetry.gpu.v1", None, "schema"),
        ("json-array", "telemetry.gpu.v1", b"[1, 2, 3]", "schema"),
        ("json-string", "telemetry.gpu.v1", b'"frame"', "schema"),
        ("invalid-utf8", "telemetry.gpu.v1", b'{"v":1,"site_id":"\xff\xfe"}', "not_json"),
        ("utf8-bom", "telemetry.gpu.v1", b"\xef\xbb\xbf" + good, "not_json"),
        ("wrong-type", "telemetry.gpu.v1", _gpu(now, power_w="lots"), "schema"),
        ("wrong-element-type", "telemetry.gpu.v1", _gpu(now, gpu_index=["a", "b"]), "schema"),
        ("missing-field", "telemetry.gpu.v1", b'{"v":1,"site_id":"demo"}', "schema"),
        ("null-required", "telemetry.gpu.v1", _gpu(now, ts_s=None), "schema"),
        ("nan", "telemetry.gpu.v1", _gpu(now, power_w=[float("nan"), 1.0]), "not_json"),
        ("infinity", "telemetry.gpu.v1", _gpu(now, power_w=[float("inf"), 1.0]), "not_json"),
        ("overflow", "telemetry.gpu.v1", good.replace(b"612.5", b"1e999"), "schema"),
        ("negative-power", "telemetry.gpu.v1", _gpu(now, power_w=[-1.0, 1.0]), "validation"),
        ("absurd-power", "telemetry.gpu.v1", _gpu(now, power_w=[1e12, 1.0]), "validation"),
        ("far-future", "telemetry.gpu.v1", _gpu(now, ts_s=now + 10 * 86_400), "validation"),
        ("far-past", "telemetry.gpu.v1", _gpu(now, ts_s=now - 365 * 86_400), "validation"),
        ("epoch-ms-not-s", "telemetry.gpu.v1", _gpu(now, ts_s=now * 1000), "validation"),
        ("unknown-version", "telemetry.gpu.v1", _gpu(now, v=2), "version"),
        ("version-as-text", "telemetry.gpu.v1", _gpu(now, v="1"), "schema"),
        ("ragged-columns", "telemetry.gpu.v1", _gpu(now, power_w=[1.0]), "validation"),
        (
            "empty-frame",
            "telemetry.gpu.v1",
            _gpu(
                now,
                node_id=[],
                gpu_index=[],
                power_w=[],
                energy_mj=[],
                util_pct=[],
                temp_c=[],
                power_limit_w=[],
            ),
            "validation",
        ),
        ("util-over-100", "telemetry.gpu.v1", _gpu(now, util_pct=[150.0, 1.0]), "validation"),
        ("negative-energy-counter", "telemetry.gpu.v1", _gpu(now, energy_mj=[-5, 1]), "validation"),
        (
            "oversized",
            "telemetry.gpu.v1",
            b'{"v":1,"pad":"' + b"x" * 2_000_000 + b'"}',
            "oversized",
        ),
        ("deep-nesting", "telemetry.gpu.v1", b"[" * 5000 + b"]" * 5000, "schema"),
        (
            "asic-unknown-state",
            "telemetry.asic.v1",
            _with("telemetry.asic.v1", now, state=["exploding", "hashing"]),
            "schema",
        ),
        (
            "asic-negative-hashrate",
            "telemetry.asic.v1",
            _with("telemetry.asic.v1", now, hashrate_ths=[-3.0, 1.0]),
            "validation",
        ),
        (
            "meter-negative-register",
            "telemetry.meter.v1",
            _with("telemetry.meter.v1", now, energy_wh=[-1.0, 2.0, None]),
            "validation",
        ),
        (
            "price-above-cap",
            "grid.prices.v1",
            _with("grid.prices.v1", now, price_usd_per_mwh=50_000.0),
            "validation",
        ),
        (
            "price-below-floor",
            "grid.prices.v1",
            _with("grid.prices.v1", now, price_usd_per_mwh=-250_000.0),
            "validation",
        ),
        (
            "price-interval-backwards",
            "grid.prices.v1",
            _with("grid.prices.v1", now, interval_end_s=0.0),
            "validation",
        ),
        (
            "frequency-zero",
            "grid.frequency.v1",
            _with("grid.frequency.v1", now, freq_hz=0.0),
            "validation",
        ),
        (
            "eea-level-7",
            "grid.dispatch.v1",
            _with("grid.dispatch.v1", now, kind="eea", level=7),
            "validation",
        ),
        (
            "dispatch-unknown-kind",
            "grid.dispatch.v1",
            _with("grid.dispatch.v1", now, kind="panic"),
            "schema",
        ),
        (
            "carbon-negative",
            "grid.carbon.v1",
            _with("grid.carbon.v1", now, intensity_g_per_kwh=-5.0),
            "validation",
        ),
    ]


CORPUS = corpus()
