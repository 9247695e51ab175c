"""Reading a range of one partition back from the broker (the agents' gap filler)."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from infra.topics import full_name
from streams.faust_runtime.readback import read_range, start_offsets
from streams.io.kafka import make_consumer, make_producer
from streams.settings import Settings

pytestmark = [pytest.mark.kafka]


def produce(s: Settings, partition: int, n: int) -> str:
    """``n`` messages (keys k<i>, values v<i>) into one partition; the topic's name."""
    topic = full_name("telemetry.meter.v1", s.topic_namespace)
    producer = make_producer(s)
    for i in range(n):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=partition)
    assert producer.flush(30) == 0
    return topic


def test_a_range_comes_back_in_order_with_keys_and_values(
    fresh_namespace_settings: Settings,
) -> None:
    s = fresh_namespace_settings
    back = read_range(s, produce(s, 1, 20), 1, 5, 12)
    assert [o for o, _, _ in back.messages] == list(range(5, 12))
    assert [(k, v) for _, k, v in back.messages] == [(b"k%d" % i, b"v%d" % i) for i in range(5, 12)]
    assert back.missing == 0


def test_offsets_the_broker_never_had_are_counted_missing(
    fresh_namespace_settings: Settings,
) -> None:
    s = fresh_namespace_settings
    back = read_range(s, produce(s, 0, 3), 0, 1, 10)
    assert [o for o, _, _ in back.messages] == [1, 2]
    assert back.missing == 7


def test_a_group_without_offsets_starts_at_the_earliest_then_at_its_commit(
    fresh_namespace_settings: Settings,
) -> None:
    s = fresh_namespace_settings
    topic = produce(s, 2, 5)
    group = f"{s.topic_namespace}.start-offset-test"
    assert start_offsets(s, group, [(topic, 2)]) == {(topic, 2): 0}
    consumer = make_consumer(s, group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, 2, 3)], asynchronous=False)
    finally:
        consumer.close()
    assert start_offsets(s, group, [(topic, 2)]) == {(topic, 2): 3}


def test_start_offsets_of_many_partitions_in_one_call(
    fresh_namespace_settings: Settings,
) -> None:
    s = fresh_namespace_settings
    topic = produce(s, 0, 4)
    produce(s, 1, 6)
    group = f"{s.topic_namespace}.start-offsets-test"
    consumer = make_consumer(s, group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, 1, 5)], asynchronous=False)
    finally:
        consumer.close()
    # Partition 0: nothing committed, the earliest; 1: committed; 2: empty, the earliest.
    got = start_offsets(s, group, [(topic, 0), (topic, 1), (topic, 2)])
    assert got == {(topic, 0): 0, (topic, 1): 5, (topic, 2): 0}
    assert start_offsets(s, group, []) == {}
