"""The observer's feed against the real broker: messages in the topics reach the state."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import pytest

from schemas.examples import examples
from streams.io.kafka import TopicProducer
from streams.observe.feed import Feed
from streams.observe.state import OBSERVED_TOPICS, ObserveState

pytestmark = pytest.mark.kafka


def poll_until(feed: Feed, done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        feed.poll(timeout_s=0.2)
        if done():
            return
    pytest.fail("the feed did not deliver in time")


def test_every_observed_topic_reaches_the_state(fresh_namespace_settings):
    settings = fresh_namespace_settings
    now = time.time()
    ex = examples(now)
    producer = TopicProducer(settings)
    for topic in OBSERVED_TOPICS:
        producer.send(topic, msgspec.json.encode(ex[topic]), key=b"demo")
    producer.send("alerts.v1", b"{not json", key=b"demo")
    producer.flush()

    state = ObserveState()
    feed = Feed(settings, state, lag_every_s=0.0)
    try:
        poll_until(feed, lambda: sum(m.total for m in state.rates.values()) == 10)
        lag = feed.refresh_lag(time.time())
    finally:
        feed.close()
    assert state.site_id == "demo"
    assert state.site is not None and state.site.interconnection_limit_mw == 420.0
    assert state.latest_power is not None and state.latest_power.total_w == 3.1e8
    assert state.surplus is not None and state.surplus.unabsorbed_w == 9.0e7
    assert list(state.active_curtailments) == ["demo-curt-1"]
    assert state.commands == 1
    assert len(state.firing) == 1
    assert state.prices.latest() == (ex["grid.prices.v1"].interval_start_s, 42.17)
    assert state.carbon.latest() == (ex["grid.carbon.v1"].hour_start_s, 347.2)
    assert state.deadletters == {"telemetry.gpu.v1": 1}
    assert state.undecodable == {"alerts.v1": 1}
    assert lag == {t: 0 for t in OBSERVED_TOPICS}


def test_lookback_skips_old_messages_and_lag_counts_the_rest(fresh_namespace_settings):
    settings = fresh_namespace_settings
    now = time.time()
    producer = TopicProducer(settings)
    old = msgspec.json.encode(examples(now - 3600)["site.power.v1"])
    new = msgspec.json.encode(examples(now)["site.power.v1"])
    for _ in range(5):
        producer.send("site.power.v1", old, key=b"demo", timestamp_ms=int((now - 3600) * 1000))
    for _ in range(3):
        producer.send("site.power.v1", new, key=b"demo", timestamp_ms=int(now * 1000))
    producer.flush()

    state = ObserveState()
    feed = Feed(settings, state, lookback_s=600.0, topics=["site.power.v1"])
    try:
        poll_until(feed, lambda: bool(state.rates) and state.rates["site.power.v1"].total >= 3)
        feed.poll(timeout_s=0.5)
        assert state.rates["site.power.v1"].total == 3  # the 5 old ones were skipped
        assert state.latest_power is not None and state.latest_power.ts_s == int(now)

        # Messages the observer has not processed yet are its lag; reading them clears it.
        for _ in range(4):
            producer.send("site.power.v1", new, key=b"demo")
        producer.flush()
        deadline = time.monotonic() + 10
        while feed.refresh_lag(time.time()).get("site.power.v1") != 4:
            assert time.monotonic() < deadline, f"lag never reached 4: {state.lag}"
            time.sleep(0.1)
        poll_until(feed, lambda: state.rates["site.power.v1"].total == 7)
        assert feed.refresh_lag(time.time()) == {"site.power.v1": 0}
    finally:
        feed.close()
