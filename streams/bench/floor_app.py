"""The faust floor: the real agents' faust app and stage-1 batching, doing nothing with the
frames. Run as a faust worker by the bench.

Same app settings (``new_faust_app``: lean fetch loop, fetch and buffer sizes), same garbage
collector thresholds and the same batches as stage 1 (the bulk queue,
``streams.faust_runtime.bulk``,
with its tracking and acks); each batch is counted and dropped. What it reaches is the most
the agents' faust app can do on this machine, so the gap from the limit (a bare
confluent-kafka drain) to it is faust's and aiokafka's, and the gap from it to the agents
is ours.

It counts messages, not readings (it decodes nothing): ``SPILLWAY_BENCH_READINGS_PER_MESSAGE``
(the pre-produced traffic's mean, as for the limit) converts them. Progress goes to the JSON
file named by ``SPILLWAY_BENCH_STATS`` once a second, as for the naive agent.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import aclosing
from pathlib import Path
from typing import Any

from infra.topics import TELEMETRY_TOPICS, full_name
from streams.agents.app import AgentOptions, buffer_messages, new_faust_app
from streams.bench.workers import report_progress
from streams.faust_runtime import bulk
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


class TimedQueue(bulk.BulkQueue):
    # The clock starts at the first message handed over, not at the first batch taken: a
    # small backlog can come out as a single batch, which would time nothing.
    def put(self, generation_id: int, tp: Any, messages: list[Any]) -> None:
        if progress["first_s"] is None:
            progress["first_s"] = time.time()
        super().put(generation_id, tp, messages)


queue = TimedQueue(telemetry.topics, max_messages=buffer_messages(OPTIONS.batch_max))
app.route_in_bulk(queue)


@app.agent(telemetry)
async def floor(stream: Any) -> None:
    # As stage 1: the stream only holds the subscription; frames come through the queue.
    taken = bulk.batches(app, stream, queue, OPTIONS.batch_max, OPTIONS.batch_within_s)
    async with aclosing(taken):
        async for partitions in taken:
            messages = [m for msgs in partitions.values() for m in msgs]
            del partitions
            bulk.ack(app.consumer, messages)
            progress["messages"] += len(messages)
            progress["readings"] = round(progress["messages"] * PER_MESSAGE)
            progress["last_s"] = time.time()


report_progress(app, progress)
