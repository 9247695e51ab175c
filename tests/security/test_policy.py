"""The access policy, checked against the rules as the brief states them (no broker).

Expected verdicts are derived here from topic names and the stated rules, never from
``infra.security.ROLES`` itself, so a wrong grant in the data shows up as a failure.
"""

from __future__ import annotations

import pytest

from infra.security import (
    BROKER_PRINCIPAL,
    USERS,
    acl_entries,
    is_allowed,
    super_users,
)
from infra.topics import TOPICS
from streams.marts.sink import SINK_TOPICS

NAMES = [t.name for t in TOPICS]
ENTRIES = acl_entries()
SUPERS = super_users()

AGENT_OUTPUTS = ("site.power.", "surplus.", "curtailment.", "miners.commands.", "alerts.",
                 "deadletter.")
BI_READS = {"site.power.v1", "surplus.events.v1", "curtailment.events.v1",
            "miners.commands.v1", "alerts.v1"}


def allowed(user: str, op: str, name: str, resource: str = "TOPIC", ns: str = "") -> bool:
    entries = acl_entries(ns) if ns else ENTRIES
    return is_allowed(user, op, resource, name, entries, SUPERS)  # type: ignore[arg-type]


@pytest.mark.parametrize("topic", NAMES)
def test_collector_writes_only_telemetry_and_grid(topic: str) -> None:
    expected = topic.startswith(("telemetry.", "grid."))
    assert allowed("collector", "WRITE", topic) is expected
    assert not allowed("collector", "READ", topic)


@pytest.mark.parametrize("topic", NAMES)
def test_bi_never_writes_and_reads_only_outputs(topic: str) -> None:
    assert not allowed("bi", "WRITE", topic)
    assert not allowed("bi", "CREATE", topic)
    assert allowed("bi", "READ", topic) is (topic in BI_READS)


@pytest.mark.parametrize("topic", NAMES)
def test_agent_reads_inputs_and_writes_outputs(topic: str) -> None:
    reads = topic.startswith(("telemetry.", "grid.", "site."))
    assert allowed("agent", "READ", topic) is reads
    assert allowed("agent", "WRITE", topic) is topic.startswith(AGENT_OUTPUTS)


@pytest.mark.parametrize("topic", NAMES)
def test_sink_reads_exactly_what_it_stores(topic: str) -> None:
    assert allowed("sink", "READ", topic) is (topic in SINK_TOPICS)
    # It dead-letters bad records and alerts on failed quality gates; nothing else.
    assert allowed("sink", "WRITE", topic) is (topic in ("deadletter.v1", "alerts.v1"))


@pytest.mark.parametrize("topic", ["actuation.outcomes.v1", "site.power.restated.v1"])
def test_sink_reads_the_outcomes_and_restatements_it_subscribes_to(topic: str) -> None:
    assert topic in SINK_TOPICS
    assert allowed("sink", "READ", topic)


def test_agents_write_restatements() -> None:
    assert allowed("agent", "WRITE", "site.power.restated.v1")


@pytest.mark.parametrize("user", USERS)
def test_only_the_controller_writes_commands(user: str) -> None:
    # The actuator reads them; admin is the operators' super user.
    assert allowed(user, "WRITE", "miners.commands.v1") is (user in ("agent", "admin"))


@pytest.mark.parametrize(
    ("user", "op", "resource", "name", "expected"),
    [
        ("agent", "READ", "GROUP", "spillway-agents", True),
        ("agent", "READ", "GROUP", "spillway-agents-surplus", True),
        ("agent", "READ", "GROUP", "spillway-mart-sink", False),
        ("agent", "CREATE", "TOPIC", "spillway-agents-site_power-changelog", True),
        ("agent", "WRITE", "TRANSACTIONAL_ID", "spillway-agents-0-1", True),
        ("sink", "READ", "GROUP", "spillway-mart-sink", True),
        ("sink", "READ", "GROUP", "spillway-agents", False),
        ("bi", "READ", "GROUP", "spillway-bi-dashboard", True),
        ("bi", "READ", "GROUP", "spillway-agents", False),
        ("collector", "READ", "GROUP", "spillway-anything", False),
        # READ and WRITE imply DESCRIBE; nothing implies CREATE.
        ("collector", "DESCRIBE", "TOPIC", "telemetry.gpu.v1", True),
        ("collector", "CREATE", "TOPIC", "telemetry.gpu.v1", False),
        ("bi", "DESCRIBE", "TOPIC", "alerts.v1", True),
        ("bi", "DESCRIBE", "TOPIC", "telemetry.gpu.v1", False),
        ("bi", "DESCRIBE_CONFIGS", "TOPIC", "alerts.v1", False),
        # The admin is a super user; unknown users get nothing.
        ("admin", "ALTER_CONFIGS", "TOPIC", "alerts.v1", True),
        ("admin", "WRITE", "TOPIC", "anything", True),
        ("mallory", "READ", "TOPIC", "alerts.v1", False),
        ("mallory", "WRITE", "TOPIC", "telemetry.gpu.v1", False),
    ],
)
def test_groups_internal_topics_and_implications(
    user: str, op: str, resource: str, name: str, expected: bool
) -> None:
    assert allowed(user, op, name, resource) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("t1.telemetry.gpu.v1", True),
        ("telemetry.gpu.v1", False),  # another namespace (the bare one)
        ("t2.telemetry.gpu.v1", False),
        ("t1.alerts.v1", False),
        ("t1telemetry.gpu.v1", False),
    ],
)
def test_namespace_confines_topic_grants(name: str, expected: bool) -> None:
    assert allowed("collector", "WRITE", name, ns="t1") is expected


@pytest.mark.parametrize(
    ("user", "op", "resource", "name", "expected"),
    [
        # The agents' faust app id is "<namespace>.spillway-agents" (streams/agents/app.py).
        ("agent", "READ", "GROUP", "t1.spillway-agents", True),
        ("agent", "READ", "GROUP", "t1.spillway-agents-sites", True),
        ("agent", "READ", "GROUP", "spillway-agents", False),
        ("agent", "CREATE", "TOPIC", "t1.spillway-agents-site-inputs", True),
        ("agent", "CREATE", "TOPIC", "spillway-agents-site-inputs", False),
        # The sink's and BI's groups keep their names in every namespace.
        ("sink", "READ", "GROUP", "spillway-mart-sink", True),
        ("bi", "READ", "GROUP", "spillway-bi-x", True),
        ("bi", "READ", "GROUP", "t1.spillway-bi-x", False),
    ],
)
def test_namespaced_and_plain_group_names(
    user: str, op: str, resource: str, name: str, expected: bool
) -> None:
    assert allowed(user, op, name, resource, ns="t1") is expected


def test_only_admin_and_the_broker_are_super_users() -> None:
    assert sorted(SUPERS) == sorted(["User:admin", BROKER_PRINCIPAL])
    assert set(USERS) == {"admin", "collector", "agent", "sink", "bi", "actuator"}


def test_only_allow_entries_with_known_principals() -> None:
    principals = {e.principal for e in ENTRIES}
    assert principals == {
        "User:collector",
        "User:agent",
        "User:sink",
        "User:bi",
        "User:actuator",
    }
