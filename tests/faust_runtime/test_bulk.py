"""The bulk queue that hands telemetry to stage 1 a fetch at a time
(``streams.faust_runtime.bulk``).

Pure logic: the queue, and the hand-over with a stand-in for faust's consumer (the real
consumer is exercised on a real broker by every agents test, e.g. the backlog and
two-worker tests)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams.faust_runtime.bulk import BulkQueue, Taken, ack, current, hand_over

A = TP("telemetry.asic.v1", 0)
B = TP("telemetry.gpu.v1", 1)
GRID = TP("grid.prices.v1", 0)


def msgs(tp: TP, start: int, n: int) -> list[Any]:
    return [SimpleNamespace(tp=tp, topic=tp.topic, offset=o) for o in range(start, start + n)]


def offsets(taken: Taken, tp: TP) -> list[int]:
    return [m.offset for m in taken.partitions.get(tp, [])]


def test_a_batch_is_shared_out_across_the_partitions_queued_in_fetch_order() -> None:
    async def run() -> None:
        q = BulkQueue([A.topic, B.topic], max_messages=10_000)
        q.put(7, A, msgs(A, 0, 1000))
        q.put(7, B, msgs(B, 500, 10))
        first = await q.take(100, within_s=0.0)
        assert first.generation_id == 7
        # ceil(100 / 2) each at most: a partition's minutes of backlog never fill a batch
        # on their own while another partition waits.
        assert offsets(first, A) == list(range(50))
        assert offsets(first, B) == list(range(500, 510))
        second = await q.take(100, within_s=0.0)
        assert offsets(second, A) == list(range(50, 150))
        assert len(q) == 1000 - 150

    asyncio.run(run())


def test_take_waits_for_more_within_its_window_and_not_past_a_full_batch() -> None:
    async def run() -> None:
        q = BulkQueue([A.topic, B.topic], max_messages=10_000)
        loop = asyncio.get_running_loop()
        q.put(1, A, msgs(A, 0, 5))
        loop.call_later(0.01, q.put, 1, B, msgs(B, 0, 5))
        taken = await q.take(1000, within_s=0.2)
        assert offsets(taken, A) == list(range(5)) and offsets(taken, B) == list(range(5))

        q.put(1, A, msgs(A, 5, 300))
        t0 = loop.time()
        taken = await asyncio.wait_for(q.take(100, within_s=30.0), 5.0)
        assert loop.time() - t0 < 5.0
        assert offsets(taken, A) == list(range(5, 105))

    asyncio.run(run())


def test_the_fetch_loop_waits_for_room_until_stage_1_takes_or_a_rebalance_clears() -> None:
    async def run() -> None:
        q = BulkQueue([A.topic], max_messages=100)
        q.put(1, A, msgs(A, 0, 100))
        waiter = asyncio.ensure_future(q.wait_for_room())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        await q.take(50, within_s=0.0)
        await asyncio.wait_for(waiter, 1.0)

        q.put(1, A, msgs(A, 100, 100))
        waiter = asyncio.ensure_future(q.wait_for_room())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        q.clear()
        await asyncio.wait_for(waiter, 1.0)
        assert len(q) == 0

    asyncio.run(run())


def test_a_new_generation_drops_what_the_last_one_left_queued() -> None:
    async def run() -> None:
        q = BulkQueue([A.topic, B.topic], max_messages=10_000)
        q.put(1, A, msgs(A, 0, 10))
        q.put(2, B, msgs(B, 0, 3))
        taken = await q.take(100, within_s=0.0)
        assert taken.generation_id == 2
        assert list(taken.partitions) == [B] and len(q) == 0

    asyncio.run(run())


def app_stub(*, active: bool, generation: int) -> Any:
    return SimpleNamespace(
        flow_control=SimpleNamespace(is_active=lambda: active),
        consumer_generation_id=generation,
    )


def test_only_batches_of_the_current_generation_with_the_flow_on_are_processed() -> None:
    taken = Taken(3, {A: msgs(A, 0, 2)})
    assert current(app_stub(active=True, generation=3), taken) == taken.partitions
    assert current(app_stub(active=False, generation=3), taken) == {}
    assert current(app_stub(active=True, generation=4), taken) == {}
    assert current(app_stub(active=True, generation=3), Taken(None, {})) == {}


class ConsumerStub:
    """What ``hand_over`` and ``ack`` use of faust's Consumer."""

    def __init__(self, *, flow_active: bool = True) -> None:
        self.flow_active = flow_active
        self._buffered_partitions: set[TP] = set()
        self.tracked: list[Any] = []
        self.acked: list[int] = []
        self.out: list[int] = []
        self.app = SimpleNamespace(
            consumer_generation_id=5,
            monitor=SimpleNamespace(
                track_tp_end_offset=lambda tp, hw: None,
                stream_inbound_time={},
                time=lambda: 1.0,
            ),
            sensors=SimpleNamespace(on_message_out=lambda tp, o, m: self.out.append(o)),
        )

    def highwater(self, tp: TP) -> int:
        return 99

    def _to_message(self, tp: TP, record: Any) -> Any:
        return SimpleNamespace(tp=tp, topic=tp.topic, offset=record.offset)

    def track_message(self, m: Any) -> None:
        self.tracked.append(m.offset)

    def ack(self, m: Any) -> bool:
        if m.offset in self.acked:
            return False
        self.acked.append(m.offset)
        return True


@pytest.mark.parametrize("flow_active", [True, False])
def test_hand_over_queues_the_bulk_topics_and_returns_the_rest(flow_active: bool) -> None:
    async def run() -> None:
        consumer = ConsumerStub(flow_active=flow_active)
        q = BulkQueue([A.topic, B.topic], max_messages=1000)
        records = {A: msgs(A, 0, 3), GRID: msgs(GRID, 7, 2), B: msgs(B, 0, 2)}
        rest = await hand_over(consumer, q, records, active={A, GRID})
        assert rest == {GRID: records[GRID]}
        if not flow_active:
            assert len(q) == 0 and consumer.tracked == []
            return
        # B is paused (not active): faust's getmany drops its records too.
        assert len(q) == 3 and consumer.tracked == [0, 1, 2]
        taken = await q.take(100, within_s=0.0)
        assert taken.generation_id == 5 and offsets(taken, A) == [0, 1, 2]
        messages = [m for msgs in taken.partitions.values() for m in msgs]
        ack(consumer, messages)
        ack(consumer, messages)  # a second ack changes nothing
        assert consumer.acked == [0, 1, 2] and consumer.out == [0, 1, 2]

    asyncio.run(run())
