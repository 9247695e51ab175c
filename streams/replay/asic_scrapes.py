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


def rack_frames(drive: AsicDrive, start_s: float, end_s: float) -> Iterator[Record]:
    if drive.period_s <= 0 or drive.rack_size <= 0 or drive.miners <= 0:
        raise ValueError("period_s, rack_size and miners must be positive")
    enc = msgspec.json.Encoder()
    racks = math.ceil(drive.miners / drive.rack_size)
    n_ticks = math.ceil((end_s - start_s) / drive.period_s - 1e-9)
    for tick in range(n_ticks):
        ts = start_s + tick * drive.period_s
        for rack in range(racks):
            first = rack * drive.rack_size
            ids = range(first, min(first + drive.rack_size, drive.miners))
            readings = [_renamed(drive.reading, f"{drive.prefix}-{i:05d}") for i in ids]
            source = f"{drive.prefix}-rack-{rack:03d}"
            frame = to_frame(readings, drive.site_id, source, ts, tick)
            yield Record(ts, "telemetry.asic.v1", source.encode(), enc.encode(frame))


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
