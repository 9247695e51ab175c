"""confluent-kafka producers and consumers configured from Settings.

confluent-kafka (librdkafka) is the hot-path client: the Python consumer drains several
hundred thousand small messages a second where kafka-python manages tens of thousands
(notes/stream-processing.md, section 3). kafka-python does admin work in infra/provision.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from infra.topics import full_name
from streams.errors import TransientError
from streams.settings import Settings


class DeliveryFailed(TransientError, RuntimeError):
    """The broker did not acknowledge one or more messages; retrying may help if transient."""


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer: acks=all, batching, lz4; at most 64 MB queued in memory."""
    cfg: dict[str, Any] = settings.librdkafka_config() | {
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "queue.buffering.max.kbytes": 65_536,
        "queue.buffering.max.messages": 200_000,
        "message.max.bytes": 10_485_760,
    }
    cfg.update(overrides)
    return Producer(cfg)


def make_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    cfg: dict[str, Any] = settings.librdkafka_config() | {
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
    }
    cfg.update(overrides)
    return Consumer(cfg)


class TopicProducer:
    """Sends to declared topics by base name, applying backpressure and tracking failures."""

    def __init__(self, settings: Settings, producer: Producer | None = None) -> None:
        self.settings = settings
        self.producer = producer or make_producer(settings)
        self.sent = 0
        self.failures: list[str] = []
        self._names: dict[str, str] = {}

    def topic(self, base: str) -> str:
        name = self._names.get(base)
        if name is None:
            name = self._names[base] = full_name(base, self.settings.topic_namespace)
        return name

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failures.append(f"{msg.topic()}: {err.str()}")

    def send(
        self,
        base: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        topic = self.topic(base)
        kwargs: dict[str, Any] = {"on_delivery": self._on_delivery}
        if headers:
            kwargs["headers"] = headers
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        while True:
            try:
                self.producer.produce(topic, value, key, **kwargs)
                break
            except BufferError:
                # Local queue full: the broker is slower than us. Wait for deliveries.
                self.producer.poll(0.05)
        self.sent += 1
        if self.sent % 1000 == 0:
            self.producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> None:
        left = self.producer.flush(timeout_s)
        if left:
            raise DeliveryFailed(f"{left} messages still unacknowledged after {timeout_s:.0f} s")
        if self.failures:
            sample = "; ".join(self.failures[:5])
            raise DeliveryFailed(f"{len(self.failures)} messages failed delivery: {sample}")


def check(msg: Message) -> Message:
    """Raise on a consumer error message (partition EOF is not an error)."""
    err = msg.error()
    if err is not None and err.code() != KafkaError._PARTITION_EOF:
        raise KafkaException(err)
    return msg


def drain(
    consumer: Consumer,
    handle: Callable[[list[Message]], None],
    *,
    idle_s: float = 5.0,
    max_s: float = 300.0,
    batch: int = 5000,
) -> int:
    """Consume until nothing arrives for ``idle_s`` (or ``max_s`` passes); return the count.

    The idle clock starts once the group has assigned partitions, so a slow join is not
    mistaken for an empty topic.
    """
    count = 0
    started = time.monotonic()
    last: float | None = None
    while time.monotonic() - started < max_s:
        if last is not None and time.monotonic() - last >= idle_s:
            break
        msgs = [m for m in consumer.consume(batch, timeout=0.5) if m.error() is None or check(m)]
        if last is None and consumer.assignment():
            last = time.monotonic()
        if msgs:
            handle(msgs)
            count += len(msgs)
            last = time.monotonic()
    return count
