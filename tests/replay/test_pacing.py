"""Pacing at N times real time, derived by hand: due = first_wall + (event - first_event) / N."""

from __future__ import annotations

import pytest

from streams.replay.pacing import wait_s


@pytest.mark.parametrize(
    ("first_event", "first_wall", "event", "now", "speed", "expected"),
    [
        (1000.0, 50.0, 1000.0, 50.0, 1.0, 0.0),  # the first record goes at once
        (1000.0, 50.0, 1010.0, 50.0, 1.0, 10.0),  # 10 s of event time at 1x
        (1000.0, 50.0, 1010.0, 50.0, 10.0, 1.0),  # ... at 10x
        (1000.0, 50.0, 1010.0, 50.5, 10.0, 0.5),  # part of the wait already passed
        (1000.0, 50.0, 1010.0, 60.0, 10.0, 0.0),  # late: send now, never negative
        (1000.0, 50.0, 1900.0, 50.0, 3600.0, 0.25),  # an hour per second: 900 s -> 0.25 s
        (1000.0, 50.0, 5000.0, 50.0, None, 0.0),  # as fast as possible
        (1000.0, 50.0, 5000.0, 50.0, 0.0, 0.0),
    ],
)
def test_wait(
    first_event: float,
    first_wall: float,
    event: float,
    now: float,
    speed: float | None,
    expected: float,
) -> None:
    assert wait_s(first_event, first_wall, event, now, speed) == pytest.approx(expected)


def test_negative_speed_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        wait_s(0.0, 0.0, 1.0, 0.0, -2.0)
