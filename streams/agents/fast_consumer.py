"""faust's consumer without four asyncio tasks per Kafka message.

faust's fetch loop (``Consumer._drain_messages``, faust-streaming 0.15) hands every message
to the conductor through ``wait_first(callback(message), suspend_flow.wait())``: four tasks
(the callback, the suspend flag, the service's stopped and crashed flags) and an
``asyncio.wait`` per message, so that a rebalance can abandon a callback that is blocked on a
full stream queue. The callback almost never blocks, and these tasks were 15% of a worker's
CPU at the reference site (py-spy).

``DirectCallbackConsumer.wait_first`` first runs the callback inline. Only if it has to wait
(a full queue, flow control, a producer buffer to drain) does the rest of it race the other
waitables exactly as before, as a task, through ``Resumed``. A message is handed over in the
same order and with the same result; the fast path only skips the tasks. The callback then
runs in the fetch loop's task rather than its own: faust's conductor, channels and topics
neither look at the current task nor set context variables (0.15.3).
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT
from mode.services import WaitArgT, WaitResults
from mode.utils.times import Seconds


class Resumed:
    """Awaitable that goes on with a coroutine that has already been stepped once.

    ``yielded`` is what that first step yielded (the future the coroutine waits on); it is
    yielded again to whichever task awaits this object, which then drives the coroutine
    on as ``yield from`` would have (values sent in, exceptions and cancellation thrown in).
    """

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._yielded
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - handed on to the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class DirectCallbackConsumer(faust_aiokafka.Consumer):
    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        # Only the fetch loop's shape: wait_first(callback(message), suspend_flow.wait()).
        callback, other = coros if len(coros) == 2 else (None, None)
        if (
            not isinstance(callback, Coroutine)
            or not isinstance(other, Coroutine)
            or timeout is not None
            or self.suspend_flow.is_set()
            or self._stopped.is_set()
            or self._crashed.is_set()
        ):
            # mode's own default is None, which its annotation leaves out.
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[arg-type]
        try:
            yielded = callback.send(None)
        except StopIteration as stop:
            other.close()
            return WaitResults([callback], [stop.value], False)
        except BaseException:
            other.close()
            raise
        return await super().wait_first(Resumed(callback, yielded), other)


class DirectCallbackTransport(faust_aiokafka.Transport):
    Consumer = DirectCallbackConsumer


class SpillwayFaustApp(faust.App):
    """faust.App whose Kafka transport uses ``DirectCallbackConsumer``."""

    def _new_transport(self) -> TransportT:
        return DirectCallbackTransport(self.conf.broker_consumer, self)
