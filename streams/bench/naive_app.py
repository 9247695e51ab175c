"""The naive baseline: a per-event faust agent that decodes each frame with ``json`` (a
packed frame into the same plain values) and updates per-second site power one reading at
a time. Run as a faust worker by the bench.

``SPILLWAY_BENCH_NAIVE_STATE`` picks where that per-second power lives:

- ``table`` (the baseline): a faust Table, as faust's own examples keep per-key state
  (``counts[word] += 1``); it survives a restart through its changelog, like the real
  agents' state, and every update is a changelog write.
- ``dict``: a plain dict, lost on a crash; shown next to it, as the lower bar.

It writes its progress (readings, first and last event wall time) to the JSON file named by
``SPILLWAY_BENCH_STATS`` once a second, so the bench can time it from outside.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import MutableMapping
from typing import Any

import faust

from infra.topics import TELEMETRY_TOPICS, full_name, spec
from schemas.packed import is_packed, to_fields, unpack
from schemas.telemetry import GpuFrame
from streams.bench.workers import report_progress
from streams.settings import get_settings

settings = get_settings()
app = faust.App(
    f"spillway-bench-naive-{os.environ.get('SPILLWAY_BENCH_RUN', 'x')}",
    broker=f"kafka://{settings.kafka_bootstrap_servers}",
    value_serializer="raw",
    store="memory://",
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    topic_replication_factor=settings.topic_replication_factor,
)
topics = [
    app.topic(full_name(t, settings.topic_namespace), value_type=bytes) for t in TELEMETRY_TOPICS
]
STATE = os.environ.get("SPILLWAY_BENCH_NAIVE_STATE", "table")
# faust writes a table's changelog to the partition of the event being processed, so a
# table must have as many partitions as the topics that update it: one per count.
_volatile: MutableMapping[Any, float] = defaultdict(float)
_by_count: dict[int, MutableMapping[Any, float]] = {}
power_by_second: dict[str, MutableMapping[Any, float]] = {}
for _base in TELEMETRY_TOPICS:
    _n = spec(_base).partitions
    if STATE == "table" and _n not in _by_count:
        _by_count[_n] = app.Table(f"naive-site-power-p{_n}", default=float, partitions=_n)
    power_by_second[full_name(_base, settings.topic_namespace)] = (
        _by_count[_n] if STATE == "table" else _volatile
    )
progress: dict[str, Any] = {"readings": 0, "messages": 0, "first_s": None, "last_s": None}


@app.agent(app.topic(*[t.get_topic_name() for t in topics], value_type=bytes))
async def naive(stream: Any) -> None:
    async for event in stream.events():  # one event at a time
        raw = event.value
        table = power_by_second[event.message.topic]
        now = time.time()
        if progress["first_s"] is None:
            progress["first_s"] = now
        frame = naive_decode(raw)
        second = int(frame["ts_s"])
        for power in frame["power_w"]:  # one reading at a time
            table[f"{frame['site_id']}:{second}"] += power or 0.0
            progress["readings"] += 1
        progress["messages"] += 1
        progress["last_s"] = now


def naive_decode(raw: bytes) -> dict[str, Any]:
    """A JSON frame as ``json`` reads it; a packed one as plain values (lists, None)."""
    if is_packed(raw):
        p = unpack(raw)
        return {"site_id": p.site_id, "ts_s": p.ts_s, "power_w": to_fields(p, GpuFrame)["power_w"]}
    return dict(json.loads(raw))


report_progress(app, progress)
