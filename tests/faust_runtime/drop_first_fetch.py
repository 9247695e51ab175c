"""``python -m tests.faust_runtime.drop_first_fetch BASE_TOPIC PARTITION AGENT_ARGS...``: an agents
worker whose consumer drops the first records it fetches of one partition, as faust was seen
to drop the rest of a fetch around a rebalance. aiokafka's position has moved past them, so
they are never fetched again unless the worker seeks back (``streams.faust_runtime.tail_watch``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from infra.topics import full_name
from streams.cli import main
from streams.faust_runtime.lean_wait import SpillwayConsumerThread


def _dropping_first_fetch_of(topic: str, partition: int) -> None:
    fetch = SpillwayConsumerThread._fetch_records
    dropped = False

    async def fetch_records(self: SpillwayConsumerThread, *args: Any, **kwargs: Any) -> Any:
        nonlocal dropped
        records = dict(await fetch(self, *args, **kwargs))
        for tp in list(records):
            if not dropped and (tp.topic, tp.partition) == (topic, partition) and records[tp]:
                gone = records.pop(tp)
                dropped = True
                print(f"test: dropped {len(gone)} fetched records of {tp}", flush=True)
        return records

    SpillwayConsumerThread._fetch_records = fetch_records  # type: ignore[method-assign,assignment]


if __name__ == "__main__":
    base, part, *agent_args = sys.argv[1:]
    namespace = os.environ.get("SPILLWAY_TOPIC_NAMESPACE", "")
    _dropping_first_fetch_of(full_name(base, namespace), int(part))
    main(["agents", *agent_args])
