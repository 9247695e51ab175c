"""A validating consumer: decode every message against its topic's contract, route bad input
to the dead-letter topic with its original bytes and the reason, count both, go on.

The counts reconcile: for each topic, accepted + rejected = messages consumed, and the
dead-letter topic holds exactly the rejected ones.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message

from infra.topics import DEADLETTER, base_name
from schemas.registry import contract_for
from schemas.validation import Limits, Rejection
from streams import deadletter
from streams.io.kafka import TopicProducer
from streams.settings import Settings


@dataclass
class Tally:
    """Accepted and rejected messages per topic (base names) and rejections by kind."""

    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def total(self, topic: str) -> int:
        return self.accepted[topic] + self.rejected[topic]

    def as_dict(self) -> dict[str, dict[str, int]]:
        topics = sorted(set(self.accepted) | set(self.rejected))
        return {t: {"accepted": self.accepted[t], "rejected": self.rejected[t]} for t in topics}


class Validator:
    """Decodes batches of raw Kafka messages; rejections go to the dead-letter topic."""

    def __init__(self, settings: Settings, producer: TopicProducer, consumer_name: str) -> None:
        self.settings = settings
        self.producer = producer
        self.consumer_name = consumer_name
        self.tally = Tally()

    def limits(self) -> Limits:
        s = self.settings
        return Limits(
            now_s=time.time(),
            max_frame_bytes=s.max_frame_bytes,
            max_clock_skew_s=s.max_clock_skew_s,
            max_age_s=s.max_age_s,
        )

    def decode_batch(self, msgs: Iterable[Message]) -> list[tuple[str, Any]]:
        """(base topic, decoded message) for every accepted message, in order."""
        limits = self.limits()
        out: list[tuple[str, Any]] = []
        for msg in msgs:
            topic = msg.topic() or ""
            base = base_name(topic, self.settings.topic_namespace)
            decoded = contract_for(base).decode(msg.value(), limits)
            if isinstance(decoded, Rejection):
                self.reject(msg, base, decoded)
            else:
                self.tally.accepted[base] += 1
                out.append((base, decoded))
        return out

    def reject(self, msg: Message, base: str, rejection: Rejection) -> None:
        letter = deadletter.envelope(
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            key=msg.key(),
            value=msg.value(),
            rejection=rejection,
            consumer=self.consumer_name,
            now_s=time.time(),
        )
        self.producer.send(DEADLETTER, deadletter.encode(letter), key=base.encode())
        self.tally.rejected[base] += 1
        self.tally.reasons[rejection.kind] += 1
