"""Recorded meter readings: a CSV of ``timestamp, meter_id, power_w, energy_wh``.

``timestamp`` is UTC epoch seconds or ISO 8601 with an offset (``2025-07-01T05:00:00Z``);
``energy_wh`` may be empty (register not read). Rows must be in time order; rows with the
same timestamp become one ``MeterFrame`` (one scrape of several meters), so 1 s to 15 min
recordings replay as the gateway sent them. The file is streamed, never loaded whole.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec

from schemas.telemetry import MeterFrame
from streams.errors import TerminalError
from streams.replay.records import Record

COLUMNS = ("timestamp", "meter_id", "power_w", "energy_wh")


class MeterLogError(TerminalError, ValueError):
    """A meter CSV row is malformed (names file and line)."""


def parse_time(text: str) -> float:
    """Epoch seconds or ISO 8601 with an offset -> UTC epoch seconds; naive ISO is refused."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {t!r} has no UTC offset")
    return dt.timestamp()


def meter_records(
    path: Path | str, site_id: str, source_id: str, shift_s: float = 0.0
) -> Iterator[Record]:
    p = Path(path)
    enc = msgspec.json.Encoder()
    seq = 0
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise MeterLogError(f"{p}, line 1: missing column(s) {missing}")
        group_ts: float | None = None
        ids: list[str] = []
        power: list[float] = []
        energy: list[float | None] = []

        def flush() -> Record:
            assert group_ts is not None
            frame = MeterFrame(
                site_id=site_id,
                source_id=source_id,
                ts_s=group_ts,
                seq=seq,
                meter_id=ids,
                power_w=power,
                energy_wh=energy,
            )
            return Record(group_ts, "telemetry.meter.v1", source_id.encode(), enc.encode(frame))

        for n, row in enumerate(reader, start=2):
            try:
                ts = parse_time(row["timestamp"]) + shift_s
                p_w = float(row["power_w"])
                e_text = (row["energy_wh"] or "").strip()
                e_wh = float(e_text) if e_text else None
            except (ValueError, TypeError) as exc:
                raise MeterLogError(f"{p}, line {n}: {exc}") from exc
            if group_ts is not None and ts != group_ts:
                if ts < group_ts:
                    raise MeterLogError(f"{p}, line {n}: timestamp goes back in time")
                yield flush()
                seq += 1
                ids, power, energy = [], [], []
            group_ts = ts
            ids.append(row["meter_id"].strip())
            power.append(p_w)
            energy.append(e_wh)
        if group_ts is not None:
            yield flush()
