"""The sink cuts a polled batch into runs of bounded bytes, in order (pure)."""

from __future__ import annotations

from typing import Any, cast

from streams.marts.sink import byte_chunks


class FakeMessage:
    def __init__(self, n: int) -> None:
        self._value = b"x" * n

    def value(self) -> bytes:
        return self._value


def sizes(chunks: list[Any]) -> list[list[int]]:
    return [[len(m.value()) for m in c] for c in chunks]


def test_runs_stay_under_the_limit_in_order() -> None:
    msgs = cast(Any, [FakeMessage(n) for n in (4, 4, 4, 9, 1, 1)])
    assert sizes(byte_chunks(msgs, 8)) == [[4, 4], [4], [9], [1, 1]]


def test_one_batch_when_it_fits() -> None:
    msgs = cast(Any, [FakeMessage(3) for _ in range(5)])
    assert sizes(byte_chunks(msgs, 100)) == [[3] * 5]
