"""The observer's Kafka side: read the output topics and fold them into ``ObserveState``.

It is read-only: its own consumer, partitions assigned by hand (no group membership, no
commits), so watching never disturbs the pipeline's consumer groups. Each partition starts
``lookback_s`` seconds back (by message timestamp); the site configuration topic is read
from the beginning (it is compacted: the latest config per site), grid prices and carbon a
day or two back so that the price and carbon charts have their history. Topics that do not
exist yet are looked for again every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from confluent_kafka import (  # noqa: TID251 - the observer's one Kafka module
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    TopicPartition,
)

from infra.topics import base_name, full_name
from schemas.registry import contract_for
from streams.io.kafka import make_consumer
from streams.observe import metrics
from streams.observe.state import (
    OBSERVED_TOPICS,
    ObserveState,
    fold,
    note_received,
    note_undecodable,
    set_lag,
)
from streams.settings import Settings

log = logging.getLogger(__name__)

TOPIC_LOOKBACK_S: dict[str, float | None] = {
    "site.config.v1": None,
    "grid.prices.v1": 24 * 3600.0,
    "grid.carbon.v1": 48 * 3600.0,
}
"""Per-topic start, seconds back (None: from the beginning); others use ``lookback_s``."""

CONSUMER_NAME = "observe"


class Feed:
    """Consume, decode and fold. ``poll`` is called in a loop by the watch command or by
    ``FeedThread``; ``lock`` (if given) is held only while folding, never while waiting."""

    def __init__(
        self,
        settings: Settings,
        state: ObserveState,
        *,
        lookback_s: float = 900.0,
        from_beginning: bool = False,
        topics: Sequence[str] = OBSERVED_TOPICS,
        lock: threading.Lock | None = None,
        clock: Callable[[], float] = time.time,
        lag_every_s: float = 1.0,
        retry_topics_s: float = 3.0,
    ) -> None:
        self.settings = settings
        self.state = state
        self.lookback_s = lookback_s
        self.from_beginning = from_beginning
        self.lock = lock or threading.Lock()
        self.clock = clock
        self.lag_every_s = lag_every_s
        self.retry_topics_s = retry_topics_s
        self.namespace = settings.topic_namespace
        self.wanted = {full_name(t, self.namespace): t for t in topics}
        self.decoders: dict[str, msgspec.json.Decoder[Any]] = {
            t: msgspec.json.Decoder(contract_for(t).type) for t in topics
        }
        self.consumer: Consumer = make_consumer(
            settings, f"spillway-observe-{uuid.uuid4().hex[:8]}", **{"enable.auto.commit": False}
        )
        self.assigned: dict[tuple[str, int], int] = {}
        """(full topic, partition) -> next offset to read."""
        self._last_lag_s = 0.0
        self._last_assign_s = -1e18

    # --- assignment ----------------------------------------------------------------

    def _start_offset(self, base: str, tp: TopicPartition, now_s: float) -> int:
        low, high = self.consumer.get_watermark_offsets(tp, timeout=5.0)
        back = None if self.from_beginning else TOPIC_LOOKBACK_S.get(base, self.lookback_s)
        if back is None:
            return int(low)
        probe = TopicPartition(tp.topic, tp.partition, int((now_s - back) * 1000))
        found = self.consumer.offsets_for_times([probe], timeout=5.0)[0]
        # -1: every message is older than the lookback; start at the end.
        return int(high) if found.offset < 0 else max(int(found.offset), int(low))

    def _missing(self) -> list[str]:
        have = {t for t, _ in self.assigned}
        return [t for t in self.wanted if t not in have]

    def _assign_missing(self, now_s: float) -> None:
        missing = self._missing()
        meta = self.consumer.list_topics(timeout=5.0)
        new: list[TopicPartition] = []
        for topic in missing:
            tmeta = meta.topics.get(topic)
            if tmeta is None or tmeta.error is not None:
                continue
            for p in sorted(tmeta.partitions):
                tp = TopicPartition(topic, p)
                offset = self._start_offset(self.wanted[topic], tp, now_s)
                self.assigned[(topic, p)] = offset
                new.append(TopicPartition(topic, p, offset if offset >= 0 else OFFSET_BEGINNING))
        if new:
            self.consumer.incremental_assign(new)
            log.info(
                "observer assigned %d partitions",
                len(new),
                extra={"topics": sorted({tp.topic for tp in new})},
            )

    # --- consuming -----------------------------------------------------------------

    def poll(self, timeout_s: float = 0.25, max_messages: int = 5000) -> int:
        """Read what is there (waiting at most ``timeout_s``), fold it; return the count."""
        now = self.clock()
        if now - self._last_assign_s >= self.retry_topics_s and self._missing():
            self._last_assign_s = now
            self._assign_missing(now)
        if not self.assigned:
            time.sleep(timeout_s)
            return 0
        msgs = self.consumer.consume(max_messages, timeout=timeout_s)
        decoded: list[tuple[str, Any]] = []
        counts: dict[str, int] = {}
        bad: list[str] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                log.warning("observer consume error: %s", err.str(), extra={"topic": m.topic()})
                continue
            topic = m.topic()
            part = m.partition()
            offset = m.offset()
            if topic is None or part is None or offset is None:
                continue
            self.assigned[(topic, part)] = offset + 1
            base = self.wanted.get(topic) or base_name(topic, self.namespace)
            counts[base] = counts.get(base, 0) + 1
            try:
                decoded.append((base, self.decoders[base].decode(m.value() or b"")))
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
                bad.append(base)
        now = self.clock()
        with self.lock:
            for base, n in counts.items():
                note_received(self.state, base, n, now)
                metrics.MESSAGES_IN.labels(CONSUMER_NAME, base).inc(n)
            for base in bad:
                note_undecodable(self.state, base)
            for base, msg in decoded:
                fold(self.state, base, msg, now)
        if now - self._last_lag_s >= self.lag_every_s:
            self._last_lag_s = now
            self.refresh_lag(now)
        return len(msgs)

    def refresh_lag(self, now_s: float) -> dict[str, int]:
        """Messages between what was read and each partition's end, summed per topic.

        Uses the partition ends that the fetch responses carry (``cached=True``): asking the
        broker instead waits out the consumer's long-poll fetch, about 0.5 s a partition.
        Partitions not fetched yet are left out until they are.
        """
        lag: dict[str, int] = {}
        for (topic, part), next_offset in list(self.assigned.items()):
            _low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, part), cached=True
            )
            if high < 0:
                continue
            base = self.wanted[topic]
            lag[base] = lag.get(base, 0) + max(0, int(high) - next_offset)
        with self.lock:
            set_lag(self.state, lag, now_s)
        for base, n in lag.items():
            metrics.CONSUMER_LAG.labels(CONSUMER_NAME, base).set(n)
        return lag

    def close(self) -> None:
        self.consumer.close()


class FeedThread(threading.Thread):
    """Runs ``feed.poll`` until ``stop()``; errors are logged and retried after a pause."""

    def __init__(self, feed: Feed, *, retry_s: float = 2.0) -> None:
        super().__init__(name="spillway-observe-feed", daemon=True)
        self.feed = feed
        self.retry_s = retry_s
        self._stop_event = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                try:
                    self.feed.poll()
                    self.error = None
                except KafkaException as exc:
                    self.error = f"Kafka: {exc}"
                    log.warning("observer feed failed, retrying: %s", exc)
                    self._stop_event.wait(self.retry_s)
        finally:
            self.feed.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        self.join(timeout_s)
