"""Every contract goes through the real broker and comes back equal; bad input reaches the
dead-letter topic with its original bytes and reason; the counts reconcile."""

from __future__ import annotations

import base64
import time
import uuid

import msgspec
import pytest

from infra.topics import DEADLETTER
from schemas.deadletter import DeadLetter
from schemas.examples import examples
from schemas.registry import CONTRACTS
from streams.io.kafka import TopicProducer, drain, make_consumer
from streams.io.validated import Validator
from streams.settings import Settings

pytestmark = pytest.mark.kafka


def _consume_all(settings: Settings, bases: list[str], idle_s: float = 3.0) -> list:  # type: ignore[type-arg]
    consumer = make_consumer(settings, f"test-{uuid.uuid4().hex[:8]}")
    producer = TopicProducer(settings)
    consumer.subscribe([producer.topic(b) for b in bases])
    got: list = []  # type: ignore[type-arg]
    try:
        drain(consumer, got.extend, idle_s=idle_s, max_s=60)
    finally:
        consumer.close()
    return got


def test_every_contract_round_trips_through_kafka(fresh_namespace_settings: Settings) -> None:
    settings = fresh_namespace_settings
    sent = examples(time.time())
    producer = TopicProducer(settings)
    for topic, message in sent.items():
        producer.send(topic, msgspec.json.encode(message), key=b"demo")
    producer.flush()

    validator = Validator(settings, producer, "test-roundtrip")
    received = validator.decode_batch(_consume_all(settings, list(sent)))
    producer.flush()
    assert {topic: msg for topic, msg in received} == sent
    assert validator.tally.rejected.total() == 0
    assert all(validator.tally.accepted[t] == 1 for t in CONTRACTS)


def test_malformed_messages_reach_the_dead_letter_topic(fresh_namespace_settings: Settings) -> None:
    settings = fresh_namespace_settings
    good = msgspec.json.encode(examples(time.time())["telemetry.gpu.v1"])
    bad = {
        b"not json at all": "not_json",
        b'{"v": 1, "site_id": "demo"}': "schema",
        good.replace(b'"v":1', b'"v":7'): "version",
        good.replace(b"612.5", b"-612.5"): "validation",
    }
    producer = TopicProducer(settings)
    for raw in [good, *bad, good]:
        producer.send("telemetry.gpu.v1", raw, key=b"rack-001")
    producer.flush()

    validator = Validator(settings, producer, "test-dlq")
    accepted = validator.decode_batch(_consume_all(settings, ["telemetry.gpu.v1"]))
    producer.flush()

    letters = [
        msgspec.json.decode(m.value(), type=DeadLetter)
        for m in _consume_all(settings, [DEADLETTER])
    ]
    assert len(accepted) == 2
    assert {base64.b64decode(d.value_b64): d.kind for d in letters} == bad
    for d in letters:
        assert d.source_topic == producer.topic("telemetry.gpu.v1")
        assert d.offset >= 1 and d.partition >= 0 and d.reason and d.failed_at_s > 0
    # Reconciliation: produced = accepted + rejected = accepted + dead letters.
    assert validator.tally.total("telemetry.gpu.v1") == 6
    assert validator.tally.rejected["telemetry.gpu.v1"] == len(letters) == 4
