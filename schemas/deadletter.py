"""The dead-letter envelope: a rejected message's original bytes and why it was rejected."""

from __future__ import annotations

from typing import Literal

from schemas.base import Message

RejectKind = Literal[
    "oversized", "not_json", "schema", "version", "validation", "unknown_topic", "unknown_site"
]


class DeadLetter(Message, kw_only=True):
    source_topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    """The original message value, base64 (standard alphabet), byte for byte."""
    kind: RejectKind
    reason: str
    """What was wrong, in words, naming the field."""
    failed_at_s: float
    consumer: str
    """Consumer group or process that rejected it."""
