"""Guard: every private faust, mode, aiokafka and confluent-kafka attribute that
``streams.faust_runtime`` relies on still exists in the installed versions.

The runtime overrides or calls these; a release that renames one would break the agents at
run time, far from the cause. This test fails first, naming the attribute, the module that
needs it and the version to check (``docs/faust-runtime.md`` says what each repair answers).
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import version

import pytest

# (module, owner, attribute, kind, who relies on it). kind: "attr" is looked up on the
# owner (class or module); "init" is an instance attribute set in the owner's __init__.
HOOKS: list[tuple[str, str, str, str, str]] = [
    ("faust.streams", "", "_current_event", "attr", "current_event.acting_for"),
    ("faust.transport.consumer", "Consumer", "_add_gap", "attr", "bulk.ack"),
    ("faust.transport.consumer", "Consumer", "_to_message", "attr", "bulk.hand_over"),
    ("faust.transport.consumer", "Consumer", "_buffered_partitions", "init", "bulk.hand_over"),
    ("faust.transport.consumer", "Consumer", "_wait_next_records", "attr", "lean_wait"),
    ("faust.transport.consumer", "Consumer", "_drain_messages", "attr", "lean_wait"),
    ("faust.transport.consumer", "Consumer", "_seek", "attr", "lean_wait.LeanWaitConsumer"),
    ("faust.transport.drivers.aiokafka", "Consumer", "_new_consumer_thread", "attr", "lean_wait"),
    ("faust.transport.drivers.aiokafka", "Consumer", "_thread", "init", "lean_wait"),
    (
        "faust.transport.drivers.aiokafka",
        "AIOKafkaConsumerThread",
        "_create_worker_consumer",
        "attr",
        "lean_wait.SpillwayConsumerThread",
    ),
    (
        "faust.transport.drivers.aiokafka",
        "AIOKafkaConsumerThread",
        "_ensure_consumer",
        "attr",
        "lean_wait.SpillwayConsumerThread",
    ),
    ("faust.transport.drivers.aiokafka", "Transport", "Consumer", "attr", "lean_wait"),
    ("faust.app.base", "App", "_new_transport", "attr", "lean_wait.SpillwayFaustApp"),
    ("mode.services", "Service", "_stopped", "init", "lean_wait.LeanWaitConsumer"),
    ("mode.services", "Service", "_crashed", "init", "lean_wait.LeanWaitConsumer"),
    ("mode.utils.locks", "Event", "_waiters", "init", "lean_wait.race_callback"),
    ("aiokafka", "AIOKafkaConsumer", "_fetch_max_wait_ms", "init", "lean_wait"),
    ("confluent_kafka", "KafkaError", "_TIMED_OUT", "attr", "readback.is_transient"),
    ("confluent_kafka", "KafkaError", "_TRANSPORT", "attr", "readback.is_transient"),
]

DISTRIBUTION = {
    "faust": "faust-streaming",
    "mode": "mode-streaming",
    "aiokafka": "aiokafka",
    "confluent_kafka": "confluent-kafka",
}


def _distribution(module: str) -> str:
    return DISTRIBUTION[module.split(".")[0]]


def _holds(module: str, owner: str, attribute: str, kind: str) -> bool:
    target: object = importlib.import_module(module)
    if owner:
        target = getattr(target, owner)
    if kind == "attr":
        return hasattr(target, attribute)
    assert isinstance(target, type), f"{module}.{owner}: an 'init' hook needs a class owner"
    sources = [
        inspect.getsource(cls.__dict__["__init__"])
        for cls in inspect.getmro(target)
        if "__init__" in cls.__dict__ and cls.__module__ != "builtins"
    ]
    return any(f"self.{attribute}" in s for s in sources)


@pytest.mark.parametrize(
    ("module", "owner", "attribute", "kind", "user"),
    HOOKS,
    ids=[f"{m}.{o}.{a}".replace("..", ".") for m, o, a, _, _ in HOOKS],
)
def test_private_hook_exists(module: str, owner: str, attribute: str, kind: str, user: str) -> None:
    dist = _distribution(module)
    where = f"{module}.{owner}" if owner else module
    assert _holds(module, owner, attribute, kind), (
        f"{where}.{attribute} is gone in {dist} {version(dist)}: streams.faust_runtime.{user} "
        f"relies on it. Check {dist} {version(dist)}'s changes against the version pinned in "
        "pyproject.toml and docs/faust-runtime.md before moving the lock."
    )


def test_hook_check_sees_a_missing_attribute() -> None:
    """The guard itself: a name that does not exist is reported missing, both kinds."""
    assert not _holds("faust.transport.consumer", "Consumer", "_add_gap_renamed", "attr")
    assert not _holds("aiokafka", "AIOKafkaConsumer", "_fetch_max_wait_ms_renamed", "init")
