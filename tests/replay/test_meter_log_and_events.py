"""Meter CSV -> MeterFrames grouped by timestamp; grid-event CSV -> dispatch/frequency."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from schemas.grid import DispatchSignal, FrequencySample
from schemas.telemetry import MeterFrame
from streams.replay.grid_events import GridEventError, grid_event_records
from streams.replay.meter_log import MeterLogError, meter_records, parse_time

FIX = Path(__file__).parents[1] / "fixtures"
T0 = datetime(2025, 7, 1, 5, tzinfo=UTC).timestamp()
T20 = datetime(2025, 7, 1, 20, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1751346000", T0),
        ("1751346000.5", T0 + 0.5),
        ("2025-07-01T05:00:00Z", T0),
        ("2025-07-01T00:00:00-05:00", T0),
        (" 2025-07-01T05:00:00+00:00 ", T0),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text) == expected


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_time("2025-07-01T05:00:00")


def test_rows_with_one_timestamp_are_one_frame() -> None:
    recs = list(meter_records(FIX / "meters.csv", "s", "gw-1"))
    frames = [msgspec.json.decode(r.value, type=MeterFrame) for r in recs]
    assert [f.ts_s for f in frames] == [T0, T0 + 900, T0 + 1800]
    assert [f.seq for f in frames] == [0, 1, 2]
    assert frames[0].meter_id == ["poi", "ai", "mining"]
    assert frames[0].energy_wh == [1_000_000.0, 600_000.0, None]  # empty register -> None
    assert frames[1].power_w == [1_510_000.0, 905_000.0]
    assert {r.key for r in recs} == {b"gw-1"}


def test_meter_shift() -> None:
    recs = list(meter_records(FIX / "meters.csv", "s", "gw", shift_s=-3600.0))
    assert recs[0].ts_s == T0 - 3600
    assert msgspec.json.decode(recs[0].value, type=MeterFrame).ts_s == T0 - 3600


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("timestamp,meter_id,power_w\n", "missing column"),
        ("timestamp,meter_id,power_w,energy_wh\n10,a,x,1\n", "line 2"),
        ("timestamp,meter_id,power_w,energy_wh\n10,a,1,1\n5,a,1,1\n", "back in time"),
    ],
)
def test_bad_meter_rows(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "m.csv"
    p.write_text(text)
    with pytest.raises(MeterLogError, match=match):
        list(meter_records(p, "s", "g"))


def test_grid_events_open_close_and_frequency() -> None:
    recs = list(grid_event_records(FIX / "grid_events.csv", "pmu-1"))
    assert [r.ts_s for r in recs] == sorted(r.ts_s for r in recs)
    dispatch = [
        msgspec.json.decode(r.value, type=DispatchSignal)
        for r in recs
        if r.topic == "grid.dispatch.v1"
    ]
    freq = [
        msgspec.json.decode(r.value, type=FrequencySample)
        for r in recs
        if r.topic == "grid.frequency.v1"
    ]
    # ecrs-1 opens at 20:00 (no end yet) and closes at 20:30; eea-2 is open-ended
    assert [(d.event_id, d.start_s, d.end_s) for d in dispatch] == [
        ("ecrs-1", T20, None),
        ("ecrs-1", T20, T20 + 1800),
        ("eea-2", T20 + 3600, None),
    ]
    assert dispatch[0].reduce_to_mw == 5.0 and dispatch[0].response_deadline_s == 600
    assert dispatch[2].level == 2 and dispatch[2].site_id is None
    # 5 s at 59.65 Hz sampled each second, then back to nominal at the end
    assert [(f.ts_s - T20 - 600, f.freq_hz) for f in freq] == [
        (0, 59.65),
        (1, 59.65),
        (2, 59.65),
        (3, 59.65),
        (4, 59.65),
        (5, 60.0),
    ]


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("tornado,x,1,2,,,,,", "neither 'frequency'"),
        ("eea,x,1,2,,,,,", "needs level"),
        ("frequency,x,1,,,,59.5,,", "needs freq_hz and end"),
        ("ecrs,x,5,3,,,,,", "end is not after start"),
        ("ecrs,x,yesterday,,,,,,", "line 2"),
    ],
)
def test_bad_grid_events(tmp_path: Path, row: str, match: str) -> None:
    p = tmp_path / "e.csv"
    p.write_text(
        "kind,event_id,start,end,level,reduce_to_mw,freq_hz,response_deadline_s,site_id\n"
        + row
        + "\n"
    )
    with pytest.raises(GridEventError, match=match):
        list(grid_event_records(p))
