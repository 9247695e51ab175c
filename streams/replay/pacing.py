"""When to send a record: pure arithmetic, so pacing is tested without sleeping.

At ``speed`` N, event time advances N seconds per wall second from the first record;
``speed`` None or 0 means as fast as the broker takes it.
"""

from __future__ import annotations


def wait_s(
    first_event_s: float,
    first_wall_s: float,
    event_s: float,
    now_wall_s: float,
    speed: float | None,
) -> float:
    """Seconds to sleep before sending the record stamped ``event_s`` (0 when late)."""
    if not speed:
        return 0.0
    if speed < 0:
        raise ValueError(f"speed must be positive, got {speed}")
    due = first_wall_s + (event_s - first_event_s) / speed
    return max(0.0, due - now_wall_s)
