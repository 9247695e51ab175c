"""Build dead-letter envelopes (pure): original bytes, where they came from, and why."""

from __future__ import annotations

import base64

import msgspec

from schemas.deadletter import DeadLetter
from schemas.validation import Rejection

_encoder = msgspec.json.Encoder()


def envelope(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    rejection: Rejection,
    consumer: str,
    now_s: float,
) -> DeadLetter:
    return DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        key_b64=base64.b64encode(key).decode() if key is not None else None,
        value_b64=base64.b64encode(value or b"").decode(),
        kind=rejection.kind,
        reason=rejection.reason,
        failed_at_s=now_s,
        consumer=consumer,
    )


def encode(letter: DeadLetter) -> bytes:
    return _encoder.encode(letter)


def original_value(letter: DeadLetter) -> bytes:
    return base64.b64decode(letter.value_b64)
