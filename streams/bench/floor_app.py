"""The faust floor: the real agents' faust app and stage-1 batching, doing nothing with the
frames. Run as a faust worker by the bench.

Same app settings (``new_faust_app``: lean fetch loop, fetch and buffer sizes), same garbage
collector thresholds and the same ``take_events`` batches as stage 1; each batch is counted
and dropped. What it reaches is the most any agent built on faust can do on this machine, so
the gap from the limit (a bare confluent-kafka drain) to it is faust's, and the gap from it
to the agents is ours.

It counts messages, not readings (it decodes nothing): ``SPILLWAY_BENCH_READINGS_PER_MESSAGE``
(the pre-produced traffic's mean, as for the limit) converts them. Progress goes to the JSON
file named by ``SPILLWAY_BENCH_STATS`` once a second, as for the naive agent.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from infra.topics import TELEMETRY_TOPICS, full_name
from streams.agents.app import AgentOptions, new_faust_app
from streams.bench.workers import report_progress
from streams.gc_tuning import tune_for_throughput
from streams.settings import get_settings

settings = get_settings()
OPTIONS = AgentOptions()
tune_for_throughput()
app = new_faust_app(
    f"spillway-bench-floor-{os.environ.get('SPILLWAY_BENCH_RUN', 'x')}",
    settings,
    store="memory://",
    data_dir=Path(tempfile.mkdtemp(prefix="spillway-floor-")),
    batch_max=OPTIONS.batch_max,
)
PER_MESSAGE = float(os.environ.get("SPILLWAY_BENCH_READINGS_PER_MESSAGE", "1"))
progress: dict[str, Any] = {"readings": 0, "messages": 0, "first_s": None, "last_s": None}
telemetry = app.topic(
    *[full_name(t, settings.topic_namespace) for t in TELEMETRY_TOPICS],
    key_serializer="raw",
    value_serializer="raw",
)


def _first_seen(value: Any) -> Any:
    # The clock starts at the first message into the stream, not at the first batch out of
    # it: a small backlog can come out as a single batch, which would time nothing. The price
    # is one more processor call per message (not timed alone; faust costs 170-250 µs each).
    if progress["first_s"] is None:
        progress["first_s"] = time.time()
    return value


@app.agent(telemetry)
async def floor(stream: Any) -> None:
    stream.add_processor(_first_seen)
    async for events in stream.take_events(OPTIONS.batch_max, within=OPTIONS.batch_within_s):
        now = time.time()
        progress["messages"] += len(events)
        progress["readings"] = round(progress["messages"] * PER_MESSAGE)
        progress["last_s"] = now


report_progress(app, progress)
