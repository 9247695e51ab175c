"""The send loop with a producer double and a fake clock: pacing, counts, flush."""

from __future__ import annotations

from collections import Counter

import pytest

from streams.replay.records import Record
from streams.replay.runner import send
from streams.settings import Settings


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, list[tuple[str, bytes]] | None]] = []
        self.flushed = 0

    def send(
        self,
        base: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        self.sent.append((base, key, headers))

    def flush(self, timeout_s: float = 60.0) -> None:
        self.flushed += 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


RECS = [
    Record(t, "grid.prices.v1" if t % 900 == 0 else "telemetry.gpu.v1", b"k", b"{}")
    for t in (0.0, 10.0, 20.0, 900.0)
]


@pytest.mark.parametrize(
    ("speed", "sleeps"),
    [
        (None, []),
        (1.0, [10.0, 10.0, 880.0]),
        (10.0, [1.0, 1.0, 88.0]),
    ],
)
def test_pacing_and_counts(speed: float | None, sleeps: list[float]) -> None:
    fake, clock = FakeProducer(), FakeClock()
    stats = send(
        Settings(),
        RECS,
        speed,
        producer=fake,
        label="t",
        sleep=clock.sleep,
        clock=clock,
    )
    assert clock.sleeps == pytest.approx(sleeps)
    assert stats.per_topic == Counter({"grid.prices.v1": 2, "telemetry.gpu.v1": 2})
    assert (stats.first_ts_s, stats.last_ts_s) == (0.0, 900.0)
    assert fake.flushed == 1  # returns only after the flush (every ack)
    assert all(h == [("spillway-replay", b"t")] for _, _, h in fake.sent)


def test_progress_is_reported_at_the_end() -> None:
    seen: list[tuple[float, int]] = []
    send(
        Settings(),
        RECS,
        None,
        lambda ts, n: seen.append((ts, n)),
        producer=FakeProducer(),
    )
    assert seen[-1] == (900.0, 4)
