"""The actuator reads commands and writes only actuation topics (that only the controller
writes commands is in tests/security/test_policy.py)."""

from __future__ import annotations

import pytest

from infra.security import acl_entries, is_allowed, super_users
from infra.topics import TOPICS

ENTRIES = acl_entries("ns")
SUPERS = super_users()


def allowed(user: str, op: str, topic: str) -> bool:
    return is_allowed(user, op, "TOPIC", f"ns.{topic}", ENTRIES, SUPERS)  # type: ignore[arg-type]


@pytest.mark.parametrize("topic", [t.name for t in TOPICS])
def test_actuator_writes_only_actuation_and_dead_letters(topic: str) -> None:
    expected = topic.startswith(("actuation.", "deadletter."))
    assert allowed("actuator", "WRITE", topic) is expected


def test_actuator_reads_commands_and_its_own_state() -> None:
    for t in (
        "miners.commands.v1",
        "curtailment.events.v1",  # the need its GPU tier covers
        "actuation.in_force.v1",
        "actuation.audit.v1",
        "actuation.pause.v1",
    ):
        assert allowed("actuator", "READ", t)
    assert not allowed("actuator", "READ", "telemetry.asic.v1")
    assert is_allowed("actuator", "READ", "GROUP", "spillway-actuator", ENTRIES, SUPERS)
