"""Replay into the real broker: a real ERCOT day plus the H100 trace scenario ends with
every record in Kafka, counted per topic, equal to what replay reported, and valid."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from schemas.registry import contract_for
from schemas.validation import Limits, Rejection
from streams.io.kafka import drain, make_consumer
from streams.replay import scenario
from streams.replay.runner import replay
from streams.settings import Settings

pytestmark = pytest.mark.kafka

EXAMPLE = Path(__file__).parents[2] / "infra" / "scenarios" / "h100-ercot-day.toml"
SMALL = Path(__file__).parents[1] / "fixtures" / "scenario" / "small.toml"


@pytest.mark.slow
def test_example_day_reaches_kafka_complete(fresh_namespace_settings: Settings) -> None:
    settings = fresh_namespace_settings
    stats = replay(settings, scenario.load(EXAMPLE))
    # Independently derived: 96 RT intervals, of which 95 are published within the day, 24
    # carbon hours, 24 hourly fuel mixes,
    # 4 nodes x 86,400 s / 10 s GPU frames
    assert stats.per_topic == {
        "grid.prices.v1": 95,  # the day's last SPP is published after the window
        "grid.carbon.v1": 24,
        "grid.fuelmix.v1": 24,
        "telemetry.gpu.v1": 34_560,
    }
    assert consume_counts(settings, stats.per_topic, b"h100-ercot-day") == stats.per_topic


def test_small_scenario_reaches_kafka_complete(fresh_namespace_settings: Settings) -> None:
    stats = replay(fresh_namespace_settings, scenario.load(SMALL))
    assert stats.total == 131  # counted by hand in tests/replay/test_scenario.py
    assert consume_counts(fresh_namespace_settings, stats.per_topic, b"small") == stats.per_topic


def consume_counts(settings: Settings, topics: Counter[str], label: bytes) -> Counter[str]:
    ns = settings.topic_namespace
    consumer = make_consumer(settings, f"test-replay-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([f"{ns}.{t}" for t in topics])
    got: Counter[str] = Counter()
    rejected: list[str] = []
    # Replayed data is historical: validate as a replay consumer would, with a large max age.
    limits = Limits(now_s=time.time(), max_age_s=20 * 365 * 86400.0)

    def handle(msgs: list) -> None:  # type: ignore[type-arg]
        for m in msgs:
            base = m.topic()[len(ns) + 1 :]
            got[base] += 1
            decoded = contract_for(base).decode(m.value(), limits)
            if isinstance(decoded, Rejection):
                rejected.append(f"{base}: {decoded.reason}")
            assert dict(m.headers() or [])["spillway-replay"] == label

    try:
        drain(consumer, handle, idle_s=2.0, max_s=120.0)
    finally:
        consumer.close()
    assert rejected == []
    return got


def test_default_max_age_rejects_replayed_prices(fresh_namespace_settings: Settings) -> None:
    """Why replay consumers must raise SPILLWAY_MAX_AGE_S: with the 7-day default a
    2025-07-01 price is too old for the validator."""
    sc = scenario.load(EXAMPLE)
    first = next(iter(next(iter(scenario.sources(sc).values()))))
    limits = Limits(now_s=time.time(), max_age_s=fresh_namespace_settings.max_age_s)
    decoded = contract_for(first.topic).decode(first.value, limits)
    assert isinstance(decoded, Rejection) and "in the past" in decoded.reason
