"""Recorded grid events: a CSV of dispatch, emergency-level and frequency events.

Columns: ``kind, event_id, start, end, level, reduce_to_mw, freq_hz, response_deadline_s,
site_id`` (times as in ``meter_log.parse_time``; empty cells mean "not given").

- ``kind`` one of ``schemas.grid.DispatchKind`` (``demand_response``, ``ecrs``, ``eea`` ...):
  a ``DispatchSignal`` at ``start`` with ``end_s`` open, then, if ``end`` is given, the same
  ``event_id`` again at ``end`` with ``end_s`` set (how a real notice is opened and closed).
  ``eea`` needs ``level`` 1-3; ``site_id`` empty means system-wide.
- ``kind = frequency``: ``FrequencySample``s of ``freq_hz`` every ``period_s`` from ``start``
  to ``end``, then one at ``end`` at the nominal 60 Hz (the excursion is over).

Events are few, so the file is read whole and the messages sorted by time.
"""

from __future__ import annotations

import csv
import heapq
import math
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import msgspec

from schemas.grid import DispatchKind, DispatchSignal, FrequencySample
from streams.errors import TerminalError
from streams.replay.meter_log import parse_time
from streams.replay.records import Record

NOMINAL_HZ = 60.0
DISPATCH_KINDS = frozenset(get_args(DispatchKind))


class GridEventError(TerminalError, ValueError):
    """A grid-event row is malformed (names file and line)."""


def _opt(row: dict[str, str], name: str) -> str | None:
    v = (row.get(name) or "").strip()
    return v or None


def grid_event_records(
    path: Path | str, source_id: str = "grid-events", shift_s: float = 0.0, period_s: float = 1.0
) -> Iterator[Record]:
    p = Path(path)
    enc = msgspec.json.Encoder()
    out: list[tuple[float, int, Record]] = []
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for col in ("kind", "event_id", "start"):
            if col not in (reader.fieldnames or []):
                raise GridEventError(f"{p}, line 1: missing column {col!r}")
        for n, row in enumerate(reader, start=2):
            where = f"{p}, line {n}"
            try:
                kind = row["kind"].strip()
                start = parse_time(row["start"]) + shift_s
                end_text = _opt(row, "end")
                end = None if end_text is None else parse_time(end_text) + shift_s
            except ValueError as exc:
                raise GridEventError(f"{where}: {exc}") from exc
            if end is not None and end <= start:
                raise GridEventError(f"{where}: end is not after start")
            if kind == "frequency":
                hz_text = _opt(row, "freq_hz")
                if hz_text is None or end is None:
                    raise GridEventError(f"{where}: a frequency event needs freq_hz and end")
                hz = float(hz_text)
                count = math.ceil((end - start) / period_s - 1e-9)
                for k in range(count):
                    ts = start + k * period_s
                    s = FrequencySample(source_id=source_id, ts_s=ts, freq_hz=hz)
                    out.append(
                        (
                            ts,
                            len(out),
                            Record(ts, "grid.frequency.v1", source_id.encode(), enc.encode(s)),
                        )
                    )
                s = FrequencySample(source_id=source_id, ts_s=end, freq_hz=NOMINAL_HZ)
                out.append(
                    (
                        end,
                        len(out),
                        Record(end, "grid.frequency.v1", source_id.encode(), enc.encode(s)),
                    )
                )
                continue
            if kind not in DISPATCH_KINDS:
                raise GridEventError(
                    f"{where}: kind {kind!r} is neither 'frequency' nor one of "
                    f"{sorted(DISPATCH_KINDS)}"
                )
            level = _opt(row, "level")
            if kind == "eea" and level is None:
                raise GridEventError(f"{where}: an eea event needs level 1-3")
            reduce = _opt(row, "reduce_to_mw")
            deadline = _opt(row, "response_deadline_s")
            event_id = row["event_id"].strip()
            opened = DispatchSignal(
                event_id=event_id,
                site_id=_opt(row, "site_id"),
                kind=kind,  # type: ignore[arg-type]
                level=None if level is None else int(level),
                reduce_to_mw=None if reduce is None else float(reduce),
                start_s=start,
                end_s=None,
                response_deadline_s=0.0 if deadline is None else float(deadline),
            )
            key = event_id.encode()
            out.append(
                (start, len(out), Record(start, "grid.dispatch.v1", key, enc.encode(opened)))
            )
            if end is not None:
                closed = msgspec.structs.replace(opened, end_s=end)
                out.append(
                    (end, len(out), Record(end, "grid.dispatch.v1", key, enc.encode(closed)))
                )
    heapq.heapify(out)
    while out:
        yield heapq.heappop(out)[2]
