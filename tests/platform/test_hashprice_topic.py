"""``grid.hashprice.v1`` is a declared grid topic that the agents read (issue #23): the replay
sent network hashprice to a topic no registry knew, so the controller kept its constant."""

from __future__ import annotations

import time

import msgspec
import pytest

from infra.security import AGENT_READ_PREFIXES, TELEMETRY_GRID_PREFIXES
from infra.topics import DAY_MS, GRID_TOPICS, spec
from schemas.grid import HashpriceSignal
from schemas.registry import contract_for
from schemas.validation import Limits, Rejection
from streams.agents.app import GRID_INPUT_TOPICS
from streams.replay.prices import HASHPRICE_TOPIC

TOPIC = "grid.hashprice.v1"


def test_declared_like_the_other_grid_topics() -> None:
    assert HASHPRICE_TOPIC == TOPIC
    t = spec(TOPIC)
    assert (t.partitions, t.cleanup_policy, t.retention_ms) == (1, "delete", 400 * DAY_MS)
    assert t.retention_ms == spec("grid.prices.v1").retention_ms
    assert contract_for(TOPIC).type is HashpriceSignal
    assert TOPIC in GRID_TOPICS


def test_agents_read_it_and_collectors_may_write_it() -> None:
    assert TOPIC in GRID_INPUT_TOPICS
    assert GRID_INPUT_TOPICS[0] == "grid.prices.v1"  # owns_grid() looks at this one
    assert any(TOPIC.startswith(p) for p in AGENT_READ_PREFIXES)
    assert any(TOPIC.startswith(p) for p in TELEMETRY_GRID_PREFIXES)


NOW = float(int(time.time()))


def _raw(**change: float) -> bytes:
    fields = {"source": "coinmetrics", "ts_s": NOW - 86_400.0, "published_s": NOW}
    return msgspec.json.encode({**fields, "usd_per_ph_day": 52.4, **change})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"usd_per_ph_day": 0.0}, "usd_per_ph_day=0.0 is outside"),
        ({"usd_per_ph_day": 1e6}, "is outside"),
        ({"published_s": NOW - 90_000.0}, "published_s is before ts_s"),
        ({"published_s": NOW + 3_600.0}, "in the future"),
    ],
)
def test_bad_hashprices_are_rejected(change: dict[str, float], reason: str) -> None:
    got = contract_for(TOPIC).decode(_raw(**change), Limits(now_s=NOW))
    assert isinstance(got, Rejection) and reason in got.reason, got


def test_a_days_value_published_at_its_end_is_accepted() -> None:
    got = contract_for(TOPIC).decode(_raw(), Limits(now_s=NOW))
    assert isinstance(got, HashpriceSignal) and got.usd_per_ph_day == 52.4
