"""The hostile corpus through the real broker: the consumer survives, every rejection is in
the dead-letter topic with its original bytes and reason, and the counts reconcile."""

from __future__ import annotations

import base64
import time
import uuid
from collections import Counter
from typing import cast

import msgspec
import pytest

from infra.topics import DEADLETTER
from schemas.deadletter import DeadLetter
from schemas.examples import examples
from streams.io.kafka import TopicProducer, drain, make_consumer
from streams.io.validated import Validator
from streams.settings import Settings
from tests.hostile.corpus import corpus

pytestmark = pytest.mark.kafka


def test_hostile_corpus_is_dead_lettered_and_reconciles(
    fresh_namespace_settings: Settings,
) -> None:
    settings = fresh_namespace_settings.model_copy(update={"max_frame_bytes": 1_048_576})
    now = time.time()
    cases = corpus(now)
    good = examples(now)
    producer = TopicProducer(settings)
    produced: Counter[str] = Counter()
    for _, topic, raw, _ in cases:
        producer.send(topic, raw, key=b"hostile")  # type: ignore[arg-type]
        produced[topic] += 1
    for topic in {t for _, t, _, _ in cases}:  # one good message per topic: the consumer goes on
        producer.send(topic, msgspec.json.encode(good[topic]), key=b"good")
        produced[topic] += 1
    producer.flush()

    consumer = make_consumer(settings, f"hostile-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([producer.topic(t) for t in produced])
    validator = Validator(settings, producer, "hostile-test")
    accepted: list[tuple[str, object]] = []
    drain(consumer, lambda b: accepted.extend(validator.decode_batch(b)), idle_s=3, max_s=90)
    consumer.close()
    producer.flush()

    dlq = make_consumer(settings, f"hostile-dlq-{uuid.uuid4().hex[:6]}")
    dlq.subscribe([producer.topic(DEADLETTER)])
    letters: list[DeadLetter] = []
    drain(
        dlq,
        lambda b: letters.extend(
            msgspec.json.decode(cast(bytes, m.value()), type=DeadLetter) for m in b
        ),
        idle_s=3,
        max_s=60,
    )
    dlq.close()

    assert len(accepted) == len(produced)  # exactly the good ones
    for topic, n in produced.items():
        assert validator.tally.total(topic) == n
    assert len(letters) == len(cases) == validator.tally.rejected.total()
    expected = Counter((raw or b"", kind) for _, _, raw, kind in cases)
    got = Counter((base64.b64decode(d.value_b64), d.kind) for d in letters)
    assert got == expected
    assert all(d.reason and d.offset >= 0 for d in letters)
