"""Shared base for all contracts."""

from __future__ import annotations

import msgspec

SCHEMA_VERSION = 1
"""Version every v1 topic carries in its ``v`` field; other values are dead-lettered."""


class Message(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Base of every message. ``v`` is the contract version of the topic it is sent on.

    Unknown fields are ignored so that producers may add optional fields without breaking
    older consumers (the compatibility test enforces the other direction).
    """

    v: int = SCHEMA_VERSION
