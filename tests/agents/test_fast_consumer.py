"""The fetch loop's callback run inline, and the same results as faust's task-per-message
path when the callback has to wait, fails, or is abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from streams.agents.fast_consumer import DirectCallbackConsumer, Resumed, SpillwayFaustApp


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _consumer() -> DirectCallbackConsumer:
    # Building the consumer talks to no broker; nothing here starts it.
    app = SpillwayFaustApp("fast-consumer-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    assert isinstance(consumer, DirectCallbackConsumer)
    return consumer


def test_app_uses_the_direct_callback_consumer(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        assert isinstance(_consumer(), DirectCallbackConsumer)

    loop.run_until_complete(main())


def test_callback_that_never_waits_runs_inline_without_tasks(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def main() -> None:
        consumer = _consumer()
        ran: list[int] = []

        async def callback() -> int:
            ran.append(1)
            return 42

        before = len(asyncio.all_tasks())
        cb = callback()
        result = await consumer.wait_first(cb, consumer.suspend_flow.wait())
        assert ran == [1]
        assert result.done == [cb] and result.results == [42] and not result.stopped
        assert len(asyncio.all_tasks()) == before

    loop.run_until_complete(main())


def test_callback_that_waits_finishes_as_a_task(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        consumer = _consumer()
        gate: asyncio.Future[str] = loop.create_future()

        async def callback() -> str:
            got = await gate
            return got + "!"

        loop.call_later(0.01, gate.set_result, "open")
        result = await consumer.wait_first(callback(), consumer.suspend_flow.wait())
        assert result.results == ["open!"] and not result.stopped

    loop.run_until_complete(main())


def test_blocked_callback_is_abandoned_when_flow_is_suspended(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def main() -> None:
        consumer = _consumer()
        never: asyncio.Future[None] = loop.create_future()
        cleaned: list[str] = []

        async def callback() -> None:
            try:
                await never
            finally:
                cleaned.append("finally")

        loop.call_later(0.01, consumer.stop_flow)
        result = await consumer.wait_first(callback(), consumer.suspend_flow.wait())
        await asyncio.sleep(0)
        assert result.results == [True]  # the suspend flag won, as with faust's own path
        assert cleaned == ["finally"]  # the callback was cancelled, not left hanging
        assert never.cancelled()

    loop.run_until_complete(main())


def test_callback_errors_propagate_on_both_paths(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        consumer = _consumer()

        async def at_once() -> None:
            raise ValueError("bad message")

        with pytest.raises(ValueError, match="bad message"):
            await consumer.wait_first(at_once(), consumer.suspend_flow.wait())

        async def after_wait() -> None:
            await asyncio.sleep(0.001)
            raise KeyError("later")

        with pytest.raises(KeyError, match="later"):
            await consumer.wait_first(after_wait(), consumer.suspend_flow.wait())

    loop.run_until_complete(main())


def test_other_shapes_take_faust_own_path(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        consumer = _consumer()

        async def value() -> int:
            return 7

        result = await consumer.wait_first(value(), timeout=1.0)
        assert result.results == [7]
        consumer.stop_flow()  # while suspended, faust's path decides (both may be done)
        result = await consumer.wait_first(value(), consumer.suspend_flow.wait())
        assert 7 in result.results or True in result.results

    loop.run_until_complete(main())


def test_resumed_drives_a_started_coroutine_like_yield_from(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def main() -> None:
        steps: list[str] = []
        first: asyncio.Future[int] = loop.create_future()

        async def work() -> int:
            steps.append("start")
            a = await first
            steps.append("after first")
            await asyncio.sleep(0)
            return a * 2

        coro = work()
        yielded = coro.send(None)
        assert yielded is first and steps == ["start"]
        task = asyncio.ensure_future(Resumed(coro, yielded))
        await asyncio.sleep(0)
        assert not task.done()
        first.set_result(21)
        assert await task == 42
        assert steps == ["start", "after first"]

    loop.run_until_complete(main())


def test_faust_fetch_loop_still_has_the_shape_the_fast_path_assumes() -> None:
    """The fast path serves one call in faust's fetch loop; if an upgrade of faust changes
    it, this fails so that the fast path is looked at again (it would fall back, unused)."""
    import inspect

    from faust.transport.consumer import Consumer

    source = " ".join(inspect.getsource(Consumer._drain_messages).split())
    assert "await self.wait_first( callback(message), self.suspend_flow.wait() )" in source
