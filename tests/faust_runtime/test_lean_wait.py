"""race_callback: the callback runs as a task, raced against events, as mode's wait_first;
and the agents' Kafka consumer long-polls for at most ``FETCH_MAX_WAIT_MS``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from faust.types import TP
from mode.utils.locks import Event as ModeEvent

from streams.faust_runtime.lean_wait import FETCH_MAX_WAIT_MS, SpillwayFaustApp, race_callback


def events() -> tuple[asyncio.Event, ModeEvent, ModeEvent]:
    # faust's suspend_flow is asyncio's Event; mode's services stop and crash on its own.
    return asyncio.Event(), ModeEvent(), ModeEvent()


async def blocked_until_cancelled(cancelled: asyncio.Event) -> None:
    """A callback that never finishes (a full stream queue); ``cancelled`` says it was."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.set()
        raise


def test_a_finished_callback_returns_its_result_and_leaves_no_waiters() -> None:
    async def main() -> None:
        evs = events()

        async def callback() -> int:
            await asyncio.sleep(0)
            return 7

        assert await race_callback(callback(), evs) == (True, 7)
        assert all(not e._waiters for e in evs)

    asyncio.run(main())


def test_the_callback_runs_as_its_own_task() -> None:
    async def main() -> None:
        outer = asyncio.current_task()
        seen: list[asyncio.Task[object] | None] = []

        async def callback() -> None:
            seen.append(asyncio.current_task())

        await race_callback(callback(), events())
        assert seen and seen[0] is not outer

    asyncio.run(main())


@pytest.mark.parametrize("which", [0, 1, 2])
def test_an_event_set_first_cancels_a_blocked_callback(which: int) -> None:
    async def main() -> None:
        evs = events()
        cancelled = asyncio.Event()

        async def rebalance() -> None:
            await asyncio.sleep(0.01)
            evs[which].set()

        setter = asyncio.create_task(rebalance())
        assert await race_callback(blocked_until_cancelled(cancelled), evs) == (False, None)
        await setter
        assert cancelled.is_set()
        assert all(not e._waiters for e in evs)

    asyncio.run(main())


def test_the_callbacks_exception_is_raised_in_the_caller() -> None:
    async def main() -> None:
        async def callback() -> None:
            raise ValueError("bad frame")

        with pytest.raises(ValueError, match="bad frame"):
            await race_callback(callback(), events())

    asyncio.run(main())


def test_cancelling_the_caller_cancels_the_callback_and_propagates() -> None:
    async def main() -> None:
        evs = events()
        cancelled = asyncio.Event()
        caller = asyncio.create_task(race_callback(blocked_until_cancelled(cancelled), evs))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert cancelled.is_set()
        assert all(not e._waiters for e in evs)

    asyncio.run(main())


def test_a_callback_that_finishes_as_the_event_is_set_still_counts_as_done() -> None:
    async def main() -> None:
        evs = events()

        async def callback() -> str:
            evs[0].set()  # the rebalance starts while the message is being handed over
            return "delivered"

        assert await race_callback(callback(), evs) == (True, "delivered")

    asyncio.run(main())


def test_the_agents_consumer_long_polls_for_at_most_fetch_max_wait() -> None:
    async def main() -> int:
        # Nothing connects: aiokafka's consumer is only built here, never started.
        app = SpillwayFaustApp("test-short-poll", broker="kafka://127.0.0.1:1", store="memory://")
        faust_consumer: Any = app.consumer
        consumer = faust_consumer._thread._create_worker_consumer(app.transport)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert FETCH_MAX_WAIT_MS < 1500  # faust's own
    assert asyncio.run(main()) == FETCH_MAX_WAIT_MS


def test_a_seek_runs_in_the_consumers_own_thread() -> None:
    """faust would call aiokafka's seek from the worker's thread, racing the consumer thread
    that drains the same fetcher (a KeyError crashed a worker's fetcher)."""
    tp = TP("telemetry.gpu.v1", 3)

    async def main() -> list[tuple[str, tuple[object, ...]]]:
        app = SpillwayFaustApp("test-seek", broker="kafka://127.0.0.1:1", store="memory://")
        calls: list[tuple[str, tuple[object, ...]]] = []

        async def call_thread(fun: Callable[..., object], *args: object) -> None:
            calls.append((fun.__name__, args))

        consumer: Any = app.consumer
        consumer._thread.call_thread = call_thread
        await consumer.seek(tp, 5)
        assert consumer._read_offset[tp] == 5  # faust's own bookkeeping still done
        return calls

    assert asyncio.run(main()) == [("seek_here", (tp, 5))]
