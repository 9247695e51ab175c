"""Scenario files: loading, alignment in time, determinism, and clear errors."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from schemas.grid import CarbonIntensity, DispatchSignal, FuelMix, PriceSignal
from schemas.telemetry import GpuFrame
from streams.replay import scenario
from streams.replay.records import merge
from transforms.sources import SHARED_DATA

FIX = Path(__file__).parents[1] / "fixtures"
SMALL = FIX / "scenario" / "small.toml"
EXAMPLE = Path(__file__).parents[2] / "infra" / "scenarios" / "h100-ercot-day.toml"
DATA = SHARED_DATA
BUNDLED = Path(__file__).parents[2] / "infra" / "data"
T0 = datetime(2025, 7, 1, 5, tzinfo=UTC).timestamp()


def run(sc: scenario.Scenario) -> list:  # type: ignore[type-arg]
    return list(merge(dict(scenario.sources(sc))))


def test_small_scenario_counts_and_alignment() -> None:
    recs = run(scenario.load(SMALL))
    counts = Counter(r.topic for r in recs)
    # meters: 05:00, 05:15, 05:30 scrapes; gpus: 2 nodes x 60 one-minute ticks;
    # events moved 20:00Z -> 05:00Z: ecrs open+close, 5+1 frequency samples, eea (06:00) cut
    assert counts == {
        "telemetry.meter.v1": 3,
        "telemetry.gpu.v1": 120,
        "grid.dispatch.v1": 2,
        "grid.frequency.v1": 6,
    }
    assert [r.ts_s for r in recs] == sorted(r.ts_s for r in recs)
    assert recs[0].ts_s == T0 and recs[-1].ts_s < T0 + 3600
    d = [
        msgspec.json.decode(r.value, type=DispatchSignal)
        for r in recs
        if r.topic == "grid.dispatch.v1"
    ]
    assert d[0].start_s == T0 and d[1].end_s == T0 + 1800


def test_replay_is_deterministic() -> None:
    def digest() -> str:
        h = hashlib.sha256()
        for r in run(scenario.load(SMALL)):
            h.update(r.topic.encode() + r.key + r.value)
        return h.hexdigest()

    assert digest() == digest()


def test_with_start_moves_everything_and_keeps_alignment() -> None:
    sc = scenario.load(SMALL)
    moved = sc.with_start(T0 + 86400 * 500)
    a, b = run(sc), run(moved)
    assert len(a) == len(b)
    assert all(y.ts_s - x.ts_s == 86400 * 500 for x, y in zip(a, b, strict=True))
    first_gpu = next(r for r in b if r.topic == "telemetry.gpu.v1")
    assert msgspec.json.decode(first_gpu.value, type=GpuFrame).ts_s == T0 + 86400 * 500


def test_example_scenario_one_ercot_day() -> None:
    sc = scenario.load(EXAMPLE)
    recs = run(sc)
    counts = Counter(r.topic for r in recs)
    # 95 fifteen-minute prices: each is sent at its publication (interval end + 5 min), so
    # the day's last (23:45-24:00) is posted after the window; 24 hours of carbon and of
    # hourly fuel mix; 4 nodes x 86400 s / 10 s
    assert counts == {
        "grid.prices.v1": 95,
        "grid.carbon.v1": 24,
        "grid.fuelmix.v1": 24,
        "telemetry.gpu.v1": 4 * 8640,
    }
    prices = [
        msgspec.json.decode(r.value, type=PriceSignal) for r in recs if r.topic == "grid.prices.v1"
    ]
    assert prices[0].interval_start_s == T0 and prices[-1].interval_start_s == T0 + 94 * 900
    sent = [r.ts_s for r in recs if r.topic == "grid.prices.v1"]
    for t, p in zip(sent, prices, strict=True):
        assert t == p.published_s == p.interval_end_s + 300
    carbon = [
        msgspec.json.decode(r.value, type=CarbonIntensity)
        for r in recs
        if r.topic == "grid.carbon.v1"
    ]
    # 2022-07-01T05:00Z of the EIA-derived file is replayed as 2025-07-01T05:00Z
    rows = list(csv.DictReader((BUNDLED / "ERCO_NG_avgCI_2022.csv").open()))
    row = next(r for r in rows if r["timestamp"].startswith("2022-07-01 05:00"))
    assert carbon[0].hour_start_s == T0
    assert carbon[0].intensity_g_per_kwh == float(row["avg_CI"])
    fm = msgspec.json.decode(
        next(r for r in recs if r.topic == "grid.fuelmix.v1").value, type=FuelMix
    )
    assert fm.interval_start_s == T0 and fm.interval_end_s == T0 + 3600
    assert fm.generation_mw["NG"] == float(row["NG"])  # MWh in one hour = average MW


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(f'data_dir = "{FIX}"\n' + body)
    return p


HEAD = (
    'name = "x"\nsite_id = "s"\n'
    'start_utc = "2025-07-01T05:00:00Z"\nend_utc = "2025-07-01T06:00:00Z"\n'
)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('name = "x"\n', "missing 'site_id'"),
        (HEAD + "colour = 1\n", "unknown key"),
        (HEAD.replace("06:00:00Z", "04:00:00Z"), "end_utc is not after"),
        (HEAD.replace("05:00:00Z", "05:00:00"), "no UTC offset"),
        (HEAD + '[[meters]]\nfile = "nope.csv"\n', "does not exist"),
        (HEAD + '[[prices]]\nfile = "meters.csv"\nformat = "pdf"\n', "format 'pdf'"),
        (
            HEAD + '[[gpus]]\ntrace = "h100_nvml_trace_head.csv"\nperiod_s = 0\nnode_count = 1\n',
            "must be positive",
        ),
        (HEAD + '[[gpus]]\ntrace = "h100_nvml_trace_head.csv"\n', "missing 'node_count'"),
        (HEAD + "prices = 3\n", "array of tables"),
        (HEAD + '[[asics]]\nscrape = "."\n', "missing 'kind'"),
        (
            HEAD + '[[asics]]\nscrape = "."\nkind = "luxos"\nperiod_s = 60\njitter_s = 60\n',
            r"jitter_s must be in \[0, period_s\)",
        ),
        (
            HEAD + '[[asics]]\nscrape = "."\nkind = "luxos"\nmissed_share = 1\n',
            r"missed_share must be in \[0, 1\)",
        ),
    ],
)
def test_bad_scenarios_are_named(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(scenario.ScenarioError, match=match):
        scenario.load(_write(tmp_path, body))


def test_asic_scrape_drives_racks(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        HEAD + f'[[asics]]\nscrape = "{DATA}/asic_miner_api/whatsminer_btminer_api_v1"\n'
        'kind = "whatsminer"\nminers = 120\nrack_size = 50\nperiod_s = 600\nprefix = "wm"\n',
    )
    recs = run(scenario.load(p))
    # 3 racks (50 + 50 + 20) every 10 minutes for an hour
    assert len(recs) == 3 * 6
    assert {r.key for r in recs} == {b"wm-rack-000", b"wm-rack-001", b"wm-rack-002"}


def test_asic_scrape_polls_late_and_lost_as_the_scenario_says(tmp_path: Path) -> None:
    """``jitter_s``, ``missed_share`` and ``seed`` reach the rack drive: stamps fall up to
    ``jitter_s`` after the period's tick, some polls are lost, and the seed repeats both."""
    body = (
        HEAD + f'[[asics]]\nscrape = "{DATA}/asic_miner_api/whatsminer_btminer_api_v1"\n'
        'kind = "whatsminer"\nminers = 500\nrack_size = 50\nperiod_s = 60\nprefix = "wm"\n'
    )
    plain = run(scenario.load(_write(tmp_path, body)))
    noisy_body = body + "jitter_s = 5.0\nmissed_share = 0.2\nseed = 7\n"
    noisy = run(scenario.load(_write(tmp_path, noisy_body)))
    again = run(scenario.load(_write(tmp_path, noisy_body)))
    assert len(plain) == 10 * 60  # 10 racks a minute for an hour
    assert 0.6 * len(plain) < len(noisy) < 0.95 * len(plain)  # about 20 % lost
    offsets = [r.ts_s - T0 - 60 * ((r.ts_s - T0) // 60) for r in noisy]
    assert all(0.0 <= o < 5.0 for o in offsets) and max(offsets) > 1.0
    assert [(r.key, r.ts_s) for r in noisy] == [(r.key, r.ts_s) for r in again]
