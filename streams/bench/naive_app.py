"""The naive baseline: a per-event faust agent that decodes each frame with ``json`` and
updates per-second site power one reading at a time. Run as a faust worker by the bench.

It writes its progress (readings, first and last event wall time) to the JSON file named by
``SPILLWAY_BENCH_STATS`` once a second, so the bench can time it from outside.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from typing import Any

import faust

from infra.topics import TELEMETRY_TOPICS, full_name
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
power_by_second: dict[tuple[str, int], float] = defaultdict(float)
progress: dict[str, Any] = {"readings": 0, "messages": 0, "first_s": None, "last_s": None}
STATS = os.environ.get("SPILLWAY_BENCH_STATS", "naive-stats.json")


@app.agent(app.topic(*[t.get_topic_name() for t in topics], value_type=bytes))
async def naive(stream: Any) -> None:
    async for raw in stream:  # one event at a time
        now = time.time()
        if progress["first_s"] is None:
            progress["first_s"] = now
        frame = json.loads(raw)
        second = int(frame["ts_s"])
        for power in frame["power_w"]:  # one reading at a time
            power_by_second[(frame["site_id"], second)] += power or 0.0
            progress["readings"] += 1
        progress["messages"] += 1
        progress["last_s"] = now


@app.timer(interval=1.0)  # type: ignore[untyped-decorator]
async def write_stats() -> None:
    tmp = f"{STATS}.tmp"
    with open(tmp, "w") as fh:
        json.dump(progress, fh)
    os.replace(tmp, STATS)
