"""Seeking back partitions the group never committed (faust's perform_seek leaves them)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, NamedTuple

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from infra.topics import full_name
from streams.faust_runtime.lean_wait import SpillwayConsumerThread, SpillwayFaustApp
from streams.faust_runtime.rewind import never_committed, seek_to_committed_or_earliest
from streams.io.kafka import make_producer
from streams.settings import Settings


class TP(NamedTuple):
    topic: str
    partition: int


def test_partitions_with_no_commit_or_a_commit_of_zero_are_the_ones_to_rewind() -> None:
    committed = {
        TP("telemetry.gpu.v1", 0): None,
        TP("telemetry.gpu.v1", 1): 0,
        TP("telemetry.gpu.v1", 2): 17,
        TP("spillway-agents-site-combine-changelog", 0): None,  # recovery's own offsets
    }
    assert never_committed(committed) == [TP("telemetry.gpu.v1", 0), TP("telemetry.gpu.v1", 1)]


class FakeConsumer:
    """aiokafka's two calls, recorded (pure logic: what is sought where)."""

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.calls: list[tuple[str, tuple[TP, ...]]] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        self.calls.append(("committed", ()))
        return self.committed

    async def seek_to_beginning(self, *tps: TP) -> bool:
        self.calls.append(("beginning", tps))
        return True


@pytest.mark.parametrize(("reset", "rewound"), [("earliest", True), ("latest", False)])
def test_only_an_earliest_reset_rewinds(reset: str, rewound: bool) -> None:
    fresh, done = TP("telemetry.meter.v1", 0), TP("telemetry.meter.v1", 1)
    consumer = FakeConsumer({fresh: None, done: 9})
    got = asyncio.run(seek_to_committed_or_earliest(consumer, reset))
    assert got == {fresh: None, done: 9}  # what faust reads as the committed offsets
    expected = [("committed", ()), ("beginning", (fresh,))] if rewound else [("committed", ())]
    assert consumer.calls == expected


def test_the_agents_consumer_seeks_back_through_it_with_the_apps_reset() -> None:
    """faust's perform_seek reaches it, in the consumer's thread, with ``earliest``."""

    async def main() -> list[tuple[object, tuple[object, ...]]]:
        # Nothing connects: the aiokafka consumer is only built, never started.
        app = SpillwayFaustApp("test-rewind", broker="kafka://127.0.0.1:1", store="memory://")
        consumer: Any = app.consumer
        assert isinstance(consumer._thread, SpillwayConsumerThread)
        thread: Any = consumer._thread
        aiokafka_consumer = thread._consumer = thread._create_worker_consumer(app.transport)
        calls: list[tuple[object, tuple[object, ...]]] = []

        async def call_thread(fun: object, *args: object) -> dict[object, int | None]:
            calls.append((fun, args))
            return {}

        thread.call_thread = call_thread
        try:
            await consumer.perform_seek()
        finally:
            await aiokafka_consumer.stop()
        return [(fun, (args[0] is aiokafka_consumer, *args[1:])) for fun, args in calls]

    assert asyncio.run(main()) == [(seek_to_committed_or_earliest, (True, "earliest"))]


@pytest.mark.kafka
def test_records_fetched_before_a_seek_back_are_fetched_again_without_a_commit(
    fresh_namespace_settings: Settings,
) -> None:
    """On a real broker: aiokafka's own seek leaves an uncommitted partition past what it
    fetched (faust drops such a fetch); ours brings it back to offset 0, and a committed
    partition to its commit."""
    s = fresh_namespace_settings
    topic = full_name("telemetry.meter.v1", s.topic_namespace)
    producer = make_producer(s)
    for i in range(5):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0)
    assert producer.flush(30) == 0

    async def main() -> None:
        tp = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=f"test-rewind-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign([tp])

            async def fetch_all() -> list[int]:
                got: list[int] = []
                for _ in range(50):
                    batch = await consumer.getmany(tp, timeout_ms=200)
                    got += [r.offset for r in batch.get(tp, [])]
                    if len(got) >= 5:
                        break
                return got

            assert await fetch_all() == [0, 1, 2, 3, 4]
            await consumer.seek_to_committed()
            assert await consumer.position(tp) == 5  # aiokafka: nothing committed, no seek
            await seek_to_committed_or_earliest(consumer, "earliest")
            assert await consumer.position(tp) == 0
            assert await fetch_all() == [0, 1, 2, 3, 4]
            await consumer.commit({tp: OffsetAndMetadata(3, "")})
            await seek_to_committed_or_earliest(consumer, "earliest")
            assert await consumer.position(tp) == 3
        finally:
            await consumer.stop()

    asyncio.run(main())
