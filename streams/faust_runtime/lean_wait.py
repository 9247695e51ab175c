"""faust's fetch loop with one asyncio task per Kafka message instead of four.

faust's fetch loop (``Consumer._drain_messages``, faust-streaming 0.15) hands every message
to its conductor through mode's ``wait_first(callback(message), suspend_flow.wait())``: the
callback runs as a task, raced against the flow being suspended (a rebalance) and the
consumer stopping or crashing, each of those a task of its own, with an ``asyncio.wait``
over all four and three cancellations after it. At the reference site that is 1,200
messages a second and the largest share of faust's own cost in a worker (py-spy).

``LeanWaitConsumer.wait_first`` keeps what matters of that race and drops the tasks: the
callback still runs as its own task, started and scheduled exactly as before; the fetch
loop awaits that task; a gate future sits in the three events' waiter lists (where their
``wait()`` puts one) and, when any of them is set, cancels the callback as mode's version
does. Same order, same outcomes: the callback done, or cancelled by a rebalance, a stop or
a crash, and its exception raised in the fetch loop.

An earlier attempt ran the callback inline in the fetch loop's task, without a task at all;
it lost whole fetches when frames arrived while a group was settling (see the README), so
this one changes only the bookkeeping around the task, not when the callback runs.

``SpillwayConsumerThread`` caps aiokafka's fetch long poll (faust fixes it at 1.5 s). One
broker is one fetch at a time in aiokafka, and a partition whose records the worker has not
taken yet is left out of the next fetch; when that fetch then finds nothing, it waits out
its long poll, and whatever arrives meanwhile on the partition left out waits with it. Each
second, stage 2's partials were such a partition: the agents' bench saw the SitePower of a
second go out up to 0.64 s after stage 1 had sent its last partial (0.12 s with the cap).
It also seeks partitions the group never committed back to their earliest offset where
faust seeks back to the committed ones (``streams.faust_runtime.rewind``), and runs every seek
asked of the consumer in the consumer's own thread (``LeanWaitConsumer._seek``).

Since the eighth session the telemetry topics do not take this path at all: the consumer
hands their records to stage 1 a fetch at a time (``streams.faust_runtime.bulk``); the lean
wait serves the topics still read one message at a time (stage 2's, the grid's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT
from mode.services import WaitArgT, WaitResults
from mode.utils.times import Seconds

from streams.faust_runtime.bulk import BulkQueue, hand_over
from streams.faust_runtime.rewind import seek_to_committed_or_earliest


class _Waitable(Protocol):
    """asyncio's and mode's ``Event``: ``set()`` resolves every future in ``_waiters``."""

    _waiters: Any

    def is_set(self) -> bool: ...


async def race_callback(
    callback: Coroutine[Any, Any, Any], events: tuple[_Waitable, ...]
) -> tuple[bool, Any]:
    """Run ``callback`` as a task until it is done or one of ``events`` is set.

    Returns (True, its result) when it finished, (False, None) when an event was set first
    (the callback is then cancelled). Its exception is raised here; so is a cancellation of
    the caller, after cancelling the callback.
    """
    loop = asyncio.get_running_loop()
    task = loop.create_task(callback)
    gate = loop.create_future()

    def interrupt(_: asyncio.Future[Any]) -> None:
        if not task.done():
            task.cancel()

    gate.add_done_callback(interrupt)
    for event in events:
        event._waiters.append(gate)
    try:
        return True, await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if gate.done() and not gate.cancelled() and (current is None or not current.cancelling()):
            return False, None
        raise
    finally:
        for event in events:
            try:
                event._waiters.remove(gate)
            except ValueError:
                pass
        if not gate.done():
            gate.cancel()
        if not task.done():
            task.cancel()


FETCH_MAX_WAIT_MS = 50
"""The longest a fetch waits on the broker for data: also the longest a partition left out
of it waits to be fetched. An idle worker sends about 20 fetches a second."""


class SpillwayConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts (its Fetcher); faust passes 1500.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def seek_here(self, partition: TP, offset: int) -> None:
        """aiokafka's ``seek``, run by ``call_thread`` in this thread (see ``_seek``)."""
        self.seek(partition, offset)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        reset = str(self.app.conf.consumer_auto_offset_reset)
        consumer = self._ensure_consumer()
        committed = await self.call_thread(seek_to_committed_or_earliest, consumer, reset)
        return cast(Mapping[TP, int], committed)  # aiokafka's: None where none is committed


class LeanWaitConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return SpillwayConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(
        self, timeout: float
    ) -> tuple[Mapping[TP, list[Any]] | None, set[TP] | None]:
        # The records of the app's bulk topics go to its BulkQueue a fetch at a time
        # (``streams.faust_runtime.bulk``); faust's getmany hands the rest on one by one.
        records, active = await super()._wait_next_records(timeout)
        queue = cast(SpillwayFaustApp, self.app).bulk
        if queue is None or not records or not self.flow_active or self.should_stop:
            return records, active
        return await hand_over(self, queue, records, active), active

    async def _seek(self, partition: TP, offset: int) -> None:
        # faust calls aiokafka's seek from the worker's thread while the consumer's thread
        # drains the same fetcher (aiokafka is not thread-safe): a tail-watch seek that
        # landed inside ``fetched_records`` crashed the fetcher with a KeyError and stopped
        # a worker (full-site bench, 2026-11-27). The seek now runs in the consumer's thread.
        thread = cast(SpillwayConsumerThread, self._thread)
        await thread.call_thread(thread.seek_here, partition, offset)

    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        # Only the fetch loop's shape: wait_first(callback(message), suspend_flow.wait()).
        callback, flow = coros if len(coros) == 2 else (None, None)
        events = (self.suspend_flow, self._stopped, self._crashed)
        if (
            not isinstance(callback, Coroutine)
            or not isinstance(flow, Coroutine)
            or timeout is not None
            or any(e.is_set() for e in events)
        ):
            # mode's own default is None, which its annotation leaves out.
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[arg-type]
        flow.close()  # suspend_flow is watched through its waiter list instead
        done, result = await race_callback(callback, events)
        if self._stopped.is_set() or self._crashed.is_set():
            return WaitResults([], [], True)
        if done:
            return WaitResults([callback], [result], False)
        return WaitResults([flow], [True], False)


class LeanWaitTransport(faust_aiokafka.Transport):
    Consumer = LeanWaitConsumer


class SpillwayFaustApp(faust.App):
    """faust.App whose Kafka transport uses ``LeanWaitConsumer`` (and its short poll).

    ``bulk``: topics whose records go to a ``BulkQueue`` a fetch at a time instead of to
    faust's streams (None: none)."""

    bulk: BulkQueue | None = None

    def route_in_bulk(self, queue: BulkQueue) -> None:
        """Send ``queue.topics`` to ``queue``; a rebalance clears it as faust's buffers."""
        self.bulk = queue
        self.flow_control.manage_queue(queue)  # type: ignore[arg-type]

    def _new_transport(self) -> TransportT:
        return LeanWaitTransport(self.conf.broker_consumer, self)
