"""The published JSON Schemas are current, and no change breaks their consumers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from schemas.compat import breaking_changes
from schemas.export import JSON_DIR, all_schemas


def test_published_schemas_match_the_code() -> None:
    current = all_schemas()
    published = {p.stem: json.loads(p.read_text()) for p in JSON_DIR.glob("*.json")}
    assert set(published) == set(current), "run `spillway schemas export` and commit"
    for topic, schema in current.items():
        assert breaking_changes(topic, published[topic], schema) == [], topic
        assert published[topic] == schema, f"{topic}: run `spillway schemas export`"


GPU = all_schemas()["telemetry.gpu.v1"]


def _mutate(fn: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    new = copy.deepcopy(GPU)
    fn(new["$defs"]["GpuFrame"])
    return new


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (lambda d: d["properties"].pop("power_w"), "power_w was removed"),
        (lambda d: d["properties"].update(seq={"type": "string"}), "seq changed type"),
        (lambda d: d["required"].append("util_pct"), "util_pct is newly required"),
        (
            lambda d: (d["properties"].update(x={"type": "string"}), d["required"].append("x")),
            "x is newly required",
        ),
    ],
    ids=["removed", "retyped", "optional-made-required", "new-required"],
)
def test_breaking_changes_are_caught(change, expect) -> None:
    problems = breaking_changes("telemetry.gpu.v1", GPU, _mutate(change))
    assert any(expect in p for p in problems), problems


def test_adding_an_optional_field_is_fine() -> None:
    new = _mutate(lambda d: d["properties"].update(fan_rpm={"type": "integer", "default": None}))
    assert breaking_changes("telemetry.gpu.v1", GPU, new) == []
