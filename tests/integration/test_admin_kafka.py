"""infra.admin against the real broker: topics created and visible, a group's members and
their partitions, committed and end offsets, the metadata probe."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import TopicPartition

from infra import admin
from infra.provision import delete_namespace, describe_existing
from streams.io.kafka import make_consumer, make_producer
from streams.settings import Settings

pytestmark = pytest.mark.kafka


@pytest.fixture
def ns_settings(kafka_base_settings: Settings) -> Iterator[Settings]:
    """A namespace of its own with no topics; whatever the test makes is deleted after."""
    settings = kafka_base_settings.model_copy(
        update={"topic_namespace": f"t{uuid.uuid4().hex[:10]}"}
    )
    yield settings
    delete_namespace(settings)


@pytest.fixture
def topic(ns_settings: Settings) -> str:
    name = f"{ns_settings.topic_namespace}.admin-test"
    with admin.admin_session(ns_settings, "spillway-tests") as client:
        admin.ensure_topics(client, {name: admin.WantedTopic(3)}, 1)
    return name


def test_missing_topics_are_created_once_and_visible_with_their_configs(
    ns_settings: Settings,
) -> None:
    ns = ns_settings.topic_namespace
    wanted = {
        f"{ns}.a": admin.WantedTopic(3, {"retention.ms": "3600000"}),
        f"{ns}.b": admin.WantedTopic(1, {"cleanup.policy": "compact"}),
    }
    with admin.admin_session(ns_settings, "spillway-tests") as client:
        assert admin.ensure_topics(client, wanted, 1) == sorted(wanted)
        # Visible at once: no sleep between the return and the metadata.
        got = describe_existing(client, wanted)
        assert admin.ensure_topics(client, wanted, 1) == []
    assert got[f"{ns}.a"].partitions == 3 and got[f"{ns}.b"].partitions == 1
    assert got[f"{ns}.a"].configs["retention.ms"] == "3600000"
    assert got[f"{ns}.b"].configs["cleanup.policy"] == "compact"


def test_a_topic_the_broker_refuses_is_a_terminal_error(ns_settings: Settings) -> None:
    name = f"{ns_settings.topic_namespace}.bad"
    with admin.admin_session(ns_settings, "spillway-tests") as client:
        with pytest.raises(admin.AdminRefused, match=name) as err:
            admin.ensure_topics(client, {name: admin.WantedTopic(1, {"no.such.config": "1"})}, 1)
    assert not err.value.transient


def test_a_group_that_does_not_exist_has_no_members(kafka_base_settings: Settings) -> None:
    group = f"nobody-{uuid.uuid4().hex[:8]}"
    with admin.admin_session(kafka_base_settings, "spillway-tests") as client:
        found = admin.describe_group(client, group)
        assert admin.committed_offsets(client, group) == {}
    assert found.members == () and found.state == "Dead"


def test_a_members_assigned_partitions_are_decoded(ns_settings: Settings, topic: str) -> None:
    group = f"{ns_settings.topic_namespace}.members"
    consumer = make_consumer(ns_settings, group, **{"client.id": "admin-test"})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 60
        found = None
        with admin.admin_session(ns_settings, "spillway-tests") as client:
            while time.monotonic() < deadline:
                consumer.poll(0.2)  # serves the join and the assignment
                found = admin.describe_group(client, group)
                if found.state == "Stable" and found.members and found.members[0].partitions:
                    break
    finally:
        consumer.close()
    assert found is not None and found.state == "Stable", found
    (member,) = found.members
    assert member.client_id == "admin-test"
    assert member.partitions == {(topic, 0), (topic, 1), (topic, 2)}


def test_wait_for_group_returns_none_after_its_timeout(kafka_base_settings: Settings) -> None:
    start = time.monotonic()
    got = admin.wait_for_group(
        kafka_base_settings, f"nobody-{uuid.uuid4().hex[:8]}", lambda g: bool(g.members), 1.0
    )
    assert got is None and time.monotonic() - start < 5.0


def test_committed_and_end_offsets(ns_settings: Settings, topic: str) -> None:
    producer = make_producer(ns_settings)
    for i in range(5):
        producer.produce(topic, value=b"x%d" % i, partition=0)
    producer.produce(topic, value=b"y", partition=2)
    assert producer.flush(30) == 0
    group = f"{ns_settings.topic_namespace}.offsets"
    consumer = make_consumer(ns_settings, group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    finally:
        consumer.close()
    with admin.admin_session(ns_settings, "spillway-tests") as client:
        ends = admin.end_offsets(client, [(topic, 0), (topic, 1), (topic, 2)])
        committed = admin.committed_offsets(client, group)
        assert admin.end_offsets(client, []) == {}
    assert ends == {(topic, 0): 5, (topic, 1): 0, (topic, 2): 1}
    assert committed == {(topic, 0): 2}


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _probe_threads() -> int:
    return sum(t.name.startswith("kafka-io-spillway-probe") for t in threading.enumerate())


def test_the_probe_says_whether_a_broker_answers(kafka_base_settings: Settings) -> None:
    bootstrap = kafka_base_settings.kafka_bootstrap_servers
    assert admin.answers(kafka_base_settings, bootstrap, 5.0)
    assert admin.answers(None, bootstrap, 5.0)
    before = _probe_threads()
    start = time.monotonic()
    assert not admin.answers(kafka_base_settings, _closed_port(), 1.0)
    assert time.monotonic() - start < 5.0
    # A failed bootstrap must not leave kafka-python's I/O thread behind.
    assert _probe_threads() == before
