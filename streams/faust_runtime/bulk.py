"""Telemetry frames handed to stage 1 a fetch at a time, past faust's per-message path.

faust hands every Kafka message to its agents one at a time: the fetch loop's read-offset
and gap checks, a callback task raced against the flow (``lean_wait``), the conductor, an
Event, the stream's queue and iterator, sensors and an ack. The bench's faust floor (the
agents' app doing nothing with the frames) measured 170-250 µs per message, half of a
worker's CPU at the reference site, and it kept the agents under half the bare-consumer
limit however fast stage 1 became. Stage 1 already takes its frames in batches per
partition and keeps its own next offset per partition (``continuity``), so it needs none
of that per message.

``LeanWaitConsumer`` (``lean_wait``) takes the records of the topics named in a
``BulkQueue`` out of each fetch and queues them here per partition; faust gets the rest
(stage 2's partials, the grid topics) as before. What faust still does for telemetry is
what matters:

- group membership, assignment, pausing and the seek back after a rebalance;
- flow control: a batch is handed over only while the flow is active; a rebalance clears
  this queue when it clears the streams' buffers (``FlowControlEvent.manage_queue``), and
  stage 1 drops a batch from an earlier generation, as faust's stream skips such events;
- commits: every message is tracked (``Consumer.track_message``) when it is handed over,
  so a rebalance waits for stage 1 as it waits for a stream, and acked once stage 1 has
  saved the state it went into (``ack``), so the committed offset never passes a frame
  whose state is not saved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any, NamedTuple

from faust.types import TP, Message

log = logging.getLogger(__name__)


class Taken(NamedTuple):
    """What stage 1 takes at once: messages per partition, each list in fetch order."""

    generation_id: int | None
    """The consumer generation they were fetched in (None: nothing taken)."""
    partitions: dict[TP, list[Message]]


class BulkQueue:
    """Fetched messages waiting for stage 1, per partition.

    A fetch goes in whole once fewer than ``max_messages`` are queued (the fetch loop
    waits for that, as on a full stream buffer). ``take`` shares out its batch across the
    partitions queued, round robin as faust's scheduler hands messages to streams: a fetch
    can hold minutes of a backlog per partition, and a batch of one partition's minutes
    after another's would have stage 2 hear of the later partitions only after it had
    closed those seconds without them (a first start on a backlog: seconds short)."""

    def __init__(self, topics: Iterable[str], max_messages: int) -> None:
        self.topics = frozenset(topics)
        self.max_messages = max_messages
        self._parts: dict[TP, list[Message]] = {}
        self._queued = 0
        self._generation: int | None = None
        self._changed: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        # Made on first use, inside the worker's running loop.
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def __len__(self) -> int:
        """Messages queued."""
        return self._queued

    def clear(self) -> None:
        """Drop everything queued (faust's flow control calls this on a rebalance)."""
        self._parts.clear()
        self._queued = 0
        self._event().set()

    async def wait_for_room(self) -> None:
        changed = self._event()
        while self._queued >= self.max_messages:
            changed.clear()
            await changed.wait()

    def put(self, generation_id: int, tp: TP, messages: list[Message]) -> None:
        """Queue one partition's messages of a fetch (what an earlier generation left
        queued is dropped: faust seeks those partitions back)."""
        if generation_id != self._generation:
            self._parts.clear()
            self._queued = 0
            self._generation = generation_id
        self._parts.setdefault(tp, []).extend(messages)
        self._queued += len(messages)
        self._event().set()

    async def take(self, max_messages: int, within_s: float) -> Taken:
        """Waits for a first message, then until ``max_messages`` are queued or
        ``within_s`` has passed, and takes at most ``max_messages``, shared out across the
        partitions queued."""
        changed = self._event()
        while not self._queued:
            changed.clear()
            await changed.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while self._queued < max_messages:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            changed.clear()
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                break
        return self._share_out(max_messages)

    def _share_out(self, max_messages: int) -> Taken:
        taken: dict[TP, list[Message]] = {}
        if self._parts:
            quota = max(1, -(-max_messages // len(self._parts)))
            for tp in list(self._parts):
                msgs = self._parts[tp]
                taken[tp] = msgs[:quota]
                if len(msgs) > quota:
                    del msgs[:quota]
                else:
                    del self._parts[tp]
                self._queued -= len(taken[tp])
        self._event().set()  # room for the fetch loop
        return Taken(self._generation if taken else None, taken)


async def hand_over(
    consumer: Any, queue: BulkQueue, records: Mapping[TP, list[Any]], active: set[TP] | None
) -> dict[TP, list[Any]]:
    """Put the records of ``queue``'s topics into it and return the others.

    ``consumer`` is faust's ``Consumer`` that fetched ``records`` (active partitions
    ``active``, None for all). Called only while its flow is active."""
    app = consumer.app
    generation = app.consumer_generation_id
    rest: dict[TP, list[Any]] = {
        tp: recs for tp, recs in records.items() if tp.topic not in queue.topics
    }
    if len(rest) == len(records):
        return rest
    await queue.wait_for_room()
    if not consumer.flow_active or app.consumer_generation_id != generation:
        # A rebalance began meanwhile: faust seeks back to the committed offsets.
        log.warning(
            "dropped a fetch of %d telemetry partitions: rebalancing", len(records) - len(rest)
        )
        return rest
    monitor = app.monitor
    for tp, recs in records.items():
        if tp in rest:
            continue
        if active is not None and tp not in active and tp not in consumer._buffered_partitions:
            continue  # faust's getmany drops these too (paused partitions)
        monitor.track_tp_end_offset(tp, consumer.highwater(tp))
        monitor.stream_inbound_time[tp] = monitor.time()
        messages = [consumer._to_message(tp, r) for r in recs]
        for m in messages:
            consumer.track_message(m)
        queue.put(generation, tp, messages)
    return rest


def current(app: Any, taken: Taken) -> dict[TP, list[Message]]:
    """The messages to process now: none while the flow is stopped (a rebalance), and none
    fetched in an earlier generation (faust's stream skips such events; the partition is
    sought back to its committed offset and fetched again)."""
    if not app.flow_control.is_active() or taken.generation_id != app.consumer_generation_id:
        if taken.partitions:
            log.warning(
                "dropped %d telemetry frames of %d partitions fetched in generation %s "
                "(now %s, flow %s): faust seeks them back after the rebalance",
                sum(len(m) for m in taken.partitions.values()),
                len(taken.partitions),
                taken.generation_id,
                app.consumer_generation_id,
                "on" if app.flow_control.is_active() else "stopped",
            )
        return {}
    return taken.partitions


async def batches(
    app: Any, stream: Any, queue: BulkQueue, max_messages: int, within_s: float
) -> AsyncGenerator[dict[TP, list[Message]], None]:
    """The batches ``queue.take`` gives, as ``current`` lets through (empty when it drops
    them), for an agent whose ``stream`` is over the queue's topics: the stream is iterated
    meanwhile, only so that faust subscribes to those topics. Close it with ``aclosing``."""
    holder = asyncio.ensure_future(_never_delivers(stream))
    try:
        while True:
            # No name here holds a batch that ``current`` drops: a rebalance waits until
            # every message handed over is acked or gone (faust's ``wait_empty``).
            yield current(app, await queue.take(max_messages, within_s))
    finally:
        holder.cancel()


async def _never_delivers(stream: Any) -> None:
    async for event in stream.events():
        # Never reached: the consumer hands every record of these topics to the bulk
        # queue. Said loudly if that ever changes, as the agent would not see the frame.
        log.error(
            "the stream of a bulk agent delivered %s:%d@%d, which bypassed the agent",
            event.message.topic,
            event.message.partition,
            event.message.offset,
        )


def ack(consumer: Any, messages: Iterable[Message]) -> None:
    """Mark ``messages`` processed: committable, and off the list a rebalance waits on."""
    on_out = consumer.app.sensors.on_message_out
    for m in messages:
        if consumer.ack(m):
            on_out(m.tp, m.offset, m)


async def skip_over(consumer: Any, tp: TP, gaps: Iterable[tuple[int, int]]) -> None:
    """Let commits pass ``[start, end)`` ranges that were read back from Kafka rather than
    delivered (faust's fetch loop does the same for the gaps it sees)."""
    for start, end in gaps:
        await consumer._add_gap(tp, start, end - 1)
