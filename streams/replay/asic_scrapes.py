"""Recorded miner API responses (a folder per miner, one ``<command>.json`` per command, as
in ``shared/data/asic_miner_api``) -> ``AsicFrame``s.

A folder is one scrape of one miner. Replay repeats it every ``period_s`` for ``miners``
logical miners, framed ``rack_size`` to a frame (one message per rack, like the collector),
so one recorded S19 can stand for a container. Braiins REST paths map to file names with
``/`` and ``-`` replaced by ``_`` (``miner/stats`` -> ``miner_stats.json``).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from streams.collectors.asic_parse import COMMANDS, MinerReading, parse, to_frame
from streams.replay.records import Record


def command_file(command: str) -> str:
    return command.replace("/", "_").replace("-", "_") + ".json"


def read_scrape_dir(path: Path | str, kind: str) -> dict[str, dict[str, Any]]:
    """The replies of one recorded scrape, keyed by command."""
    p = Path(path)
    if kind not in COMMANDS:
        raise ValueError(f"{p}: unknown miner kind {kind!r}; known: {sorted(COMMANDS)}")
    replies: dict[str, dict[str, Any]] = {}
    for cmd in COMMANDS[kind]:
        f = p / command_file(cmd)
        if not f.is_file():
            raise FileNotFoundError(f"{p}: no {f.name} (reply to {cmd!r}) for a {kind} scrape")
        replies[cmd] = json.loads(f.read_text())
    return replies


@dataclass(frozen=True, slots=True)
class AsicDrive:
    reading: MinerReading
    miners: int
    rack_size: int
    period_s: float
    site_id: str
    prefix: str = "miner"
    jitter_s: float = 0.0
    """A rack's poll is stamped late by up to this much (uniform; real scrapes take time)."""
    missed_share: float = 0.0
    """Share of rack polls lost (API timeouts): the pipeline holds the rack's last reading
    up to the site's ``max_staleness.asic_s`` (docs/cadence.md)."""
    seed: int = 0
    """Seed of the jitter and missed polls (the same seed gives the same records)."""


def check_polling(
    miners: int, rack_size: int, period_s: float, jitter_s: float, missed_share: float
) -> None:
    """The rack drive's polling settings, or a ValueError naming the one out of range."""
    if period_s <= 0 or rack_size <= 0 or miners <= 0:
        raise ValueError("period_s, rack_size and miners must be positive")
    if not 0.0 <= jitter_s < period_s:
        raise ValueError(f"jitter_s must be in [0, period_s), got {jitter_s}")
    if not 0.0 <= missed_share < 1.0:
        raise ValueError(f"missed_share must be in [0, 1), got {missed_share}")


def rack_frames(drive: AsicDrive, start_s: float, end_s: float) -> Iterator[Record]:
    check_polling(drive.miners, drive.rack_size, drive.period_s, drive.jitter_s, drive.missed_share)
    rng = random.Random(drive.seed)
    noisy = drive.jitter_s > 0.0 or drive.missed_share > 0.0
    enc = msgspec.json.Encoder()
    racks = math.ceil(drive.miners / drive.rack_size)
    n_ticks = math.ceil((end_s - start_s) / drive.period_s - 1e-9)
    for tick in range(n_ticks):
        ts = start_s + tick * drive.period_s
        polls: list[Record] = []  # jitter reorders the racks of a tick: sent in stamp order
        for rack in range(racks):
            first = rack * drive.rack_size
            ids = range(first, min(first + drive.rack_size, drive.miners))
            readings = [_renamed(drive.reading, f"{drive.prefix}-{i:05d}") for i in ids]
            source = f"{drive.prefix}-rack-{rack:03d}"
            stamp = ts
            if noisy:
                # Both draws every poll, so that one setting does not shift the other's.
                lost = rng.random() < drive.missed_share
                stamp = ts + rng.uniform(0.0, drive.jitter_s)
                if lost:
                    continue
            frame = to_frame(readings, drive.site_id, source, stamp, tick)
            polls.append(Record(stamp, "telemetry.asic.v1", source.encode(), enc.encode(frame)))
        polls.sort(key=lambda r: r.ts_s)
        yield from polls


def _renamed(r: MinerReading, miner_id: str) -> MinerReading:
    return MinerReading(
        miner_id,
        r.model,
        r.hashrate_ths,
        r.power_w,
        r.temp_c,
        r.fan_rpm,
        r.state,
        r.power_limit_w,
        r.error,
    )


def scrape_reading(path: Path | str, kind: str, miner_id: str = "miner") -> MinerReading:
    return parse(kind, miner_id, read_scrape_dir(path, kind))
