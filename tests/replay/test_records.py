"""Event-time merge of many recordings: order, ties, windows, bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.replay.records import OutOfOrder, Record, merge, window


def rec(ts: float, tag: str) -> Record:
    return Record(ts, "grid.prices.v1", tag.encode(), b"")


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (
            {"a": [1, 3, 5], "b": [2, 4, 6]},
            [("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5), ("b", 6)],
        ),
        # equal times: the order sources were given in (stable, so replay is deterministic)
        ({"a": [1, 1], "b": [1]}, [("a", 1), ("a", 1), ("b", 1)]),
        ({"b": [1], "a": [1]}, [("b", 1), ("a", 1)]),
        ({"a": [], "b": [7]}, [("b", 7)]),
        ({}, []),
        (
            {"a": [10], "b": [1, 2, 3], "c": [0]},
            [("c", 0), ("b", 1), ("b", 2), ("b", 3), ("a", 10)],
        ),
    ],
)
def test_merge_orders_by_event_time(
    sources: dict[str, list[float]], expected: list[tuple[str, float]]
) -> None:
    got = merge({k: [rec(t, k) for t in v] for k, v in sources.items()})
    assert [(r.key.decode(), r.ts_s) for r in got] == expected


def test_a_source_going_back_in_time_is_named() -> None:
    with pytest.raises(OutOfOrder, match="late.csv: record 2"):
        list(merge({"late.csv": [rec(1, "x"), rec(5, "x"), rec(4, "x")]}))


def test_merge_is_lazy_so_memory_stays_bounded() -> None:
    pulled: list[int] = []

    def endless(tag: str, step: int) -> Iterator[Record]:
        n = 0
        while True:
            pulled.append(n)
            yield rec(n * step, tag)
            n += 1

    out = merge({"a": endless("a", 1), "b": endless("b", 2)})
    first = [next(out) for _ in range(10)]
    assert [r.ts_s for r in first] == sorted(r.ts_s for r in first)
    assert len(pulled) <= 12  # one record ahead per source, not the whole stream


@pytest.mark.parametrize(
    ("times", "start", "end", "expected"),
    [
        ([0, 5, 10, 15], 5, 15, [5, 10]),  # start inclusive, end exclusive
        ([0, 1], 5, 15, []),
        ([20, 30], 5, 15, []),
        ([5], 5, 5.0001, [5]),
    ],
)
def test_window(times: list[float], start: float, end: float, expected: list[float]) -> None:
    assert [r.ts_s for r in window((rec(t, "a") for t in times), start, end)] == expected
