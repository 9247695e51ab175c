"""Bounded containers: they keep what they promise and never more."""

from __future__ import annotations

import pytest

from streams.observe.ring import KeyedWindow, RateMeter, TimeRing


@pytest.mark.parametrize(
    ("times", "max_rows", "span_s", "kept", "late"),
    [
        ([], 5, 10, [], 0),
        ([1, 2, 3], 5, 10, [1, 2, 3], 0),
        # count bound: only the newest max_rows rows
        ([1, 2, 3, 4, 5, 6, 7], 3, 100, [5, 6, 7], 0),
        # time bound: rows at or before newest - span are dropped (span 3 at t=10 keeps 8..10)
        ([1, 2, 8, 9, 10], 100, 3, [8, 9, 10], 0),
        # a gap longer than the span leaves only the newest row
        ([1, 2, 3, 500], 100, 10, [500], 0),
        # out of order: older rows are dropped and counted
        ([5, 3, 6, 4], 10, 100, [5, 6], 2),
        # the same second again replaces, not duplicates
        ([5, 5, 6], 10, 100, [5, 6], 0),
    ],
)
def test_time_ring_bounds(times, max_rows, span_s, kept, late):
    ring = TimeRing(["v"], max_rows=max_rows, span_s=span_s)
    for t in times:
        ring.append(float(t), [float(t) * 10])
    assert [t for t, _ in ring] == kept
    assert ring.late == late
    assert ring.column_arrays() == {"t": kept, "v": [t * 10 for t in kept]}


def test_time_ring_replacement_keeps_the_new_values():
    ring = TimeRing(["a", "b"], max_rows=4, span_s=60)
    ring.append(7.0, [1.0, None])
    ring.append(7.0, [2.0, 3.0])
    assert ring.column_arrays() == {"t": [7.0], "a": [2.0], "b": [3.0]}


@pytest.mark.parametrize(
    ("kwargs", "row", "message"),
    [
        ({"max_rows": 0, "span_s": 1}, None, "max_rows"),
        ({"max_rows": 1, "span_s": 0}, None, "span_s"),
        ({"max_rows": 1, "span_s": 1}, [1.0, 2.0], "expected 1"),
    ],
)
def test_time_ring_rejects_bad_use(kwargs, row, message):
    with pytest.raises(ValueError, match=message):
        ring = TimeRing(["v"], **kwargs)
        ring.append(0.0, row)


@pytest.mark.parametrize(
    ("puts", "max_keys", "items", "at_t", "at_value"),
    [
        ([], 3, [], 10.0, None),
        ([(0, 1.0), (900, 2.0)], 3, [(0, 1.0), (900, 2.0)], 899.0, 1.0),
        ([(0, 1.0), (900, 2.0)], 3, [(0, 1.0), (900, 2.0)], 900.0, 2.0),
        # restated interval: latest value wins
        ([(0, 1.0), (0, 5.0)], 3, [(0, 5.0)], 0.0, 5.0),
        # bound: the smallest keys go, whatever order they arrived in
        ([(900, 2.0), (0, 1.0), (1800, 3.0), (2700, 4.0)], 2, [(1800, 3.0), (2700, 4.0)],
         100.0, None),
    ],
)
def test_keyed_window(puts, max_keys, items, at_t, at_value):
    w = KeyedWindow(max_keys)
    for k, v in puts:
        w.put(float(k), v)
    assert w.items() == items
    assert w.at(at_t) == at_value
    assert w.latest() == (items[-1] if items else None)


@pytest.mark.parametrize(
    ("adds", "window_s", "now_s", "rate"),
    [
        ([], 10, 100.0, 0.0),
        # first second: 50 messages seen in one second -> 50/s, not 5/s
        ([(100.2, 50)], 10, 100.9, 50.0),
        # 3 seconds seen, 10 each -> 10/s
        ([(100.0, 10), (101.5, 10), (102.1, 10)], 10, 102.5, 10.0),
        # full window: 10 per second for 20 s, window 10 -> 10/s
        ([(100.0 + i, 10) for i in range(20)], 10, 119.0, 10.0),
        # silence after traffic: the window empties
        ([(100.0, 100)], 10, 200.0, 0.0),
        # 100 in the first of 10 seconds still in the window -> 10/s
        ([(100.0, 100)], 10, 109.9, 10.0),
        # ... and gone a second later (bucket 100 is at the window's edge)
        ([(100.0, 100)], 10, 110.0, 0.0),
    ],
)
def test_rate_meter(adds, window_s, now_s, rate):
    meter = RateMeter(window_s)
    for t, n in adds:
        meter.add(t, n)
    assert meter.rate(now_s) == pytest.approx(rate)
    assert meter.total == sum(n for _, n in adds)


def test_rate_meter_memory_is_bounded():
    meter = RateMeter(5)
    for i in range(10_000):
        meter.add(float(i), 1)
    assert len(meter._buckets) <= 5
