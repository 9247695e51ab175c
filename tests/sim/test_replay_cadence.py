"""The replay's ASIC scrapes at their period, with jitter and missed polls."""

from __future__ import annotations

import pytest

from streams.collectors.asic_parse import MinerReading
from streams.replay.asic_scrapes import AsicDrive, rack_frames

READING = MinerReading("m", "S19", 100.0, 3250.0, 60.0, 3000, "hashing")


def drive(**kw: float) -> AsicDrive:
    return AsicDrive(reading=READING, miners=40, rack_size=10, period_s=60.0, site_id="s1", **kw)  # type: ignore[arg-type]


def test_the_default_scrape_stamps_every_rack_at_the_period() -> None:
    records = list(rack_frames(drive(), 0.0, 300.0))
    assert [r.ts_s for r in records] == [60.0 * t for t in range(5) for _ in range(4)]


def test_jitter_and_missed_polls_keep_event_time_order_and_are_reproducible() -> None:
    noisy = drive(jitter_s=5.0, missed_share=0.25, seed=3)
    records = list(rack_frames(noisy, 0.0, 6000.0))
    stamps = [r.ts_s for r in records]
    assert stamps == sorted(stamps)  # ``merge`` needs each reader in event-time order
    assert all(0.0 <= s % 60.0 < 5.0 for s in stamps)
    assert 0.6 < len(records) / (100 * 4) < 0.9
    assert [r.value for r in rack_frames(noisy, 0.0, 6000.0)] == [r.value for r in records]


def test_jitter_of_a_period_or_more_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter_s"):
        list(rack_frames(drive(jitter_s=60.0), 0.0, 60.0))
