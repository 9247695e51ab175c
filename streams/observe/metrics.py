"""Prometheus metrics the pipeline exports, defined once so every process names them alike.

Producers of the numbers (agents, sinks, the observer) import the metric objects below and
update them; ``start_metrics_server(port)`` serves them from a process that has no web
server of its own, and the dashboard serves the same registry at ``/metrics``.

Names follow Prometheus conventions: base units (seconds, messages), ``_total`` counters.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

READINGS_IN = Counter(
    "spillway_readings_in_total",
    "Telemetry readings consumed (one frame carries many readings)",
    ["topic"],
)
MESSAGES_IN = Counter(
    "spillway_messages_in_total", "Kafka messages consumed, decoded or not", ["consumer", "topic"]
)
DECISIONS_OUT = Counter(
    "spillway_decisions_out_total",
    "Decisions emitted: site-power seconds, surplus and curtailment events, miner commands, "
    "alerts",
    ["topic", "kind"],
)
DECISION_LATENCY = Histogram(
    "spillway_decision_latency_seconds",
    "Seconds from the reading's time to the decision that used it being emitted",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)
CONSUMER_LAG = Gauge(
    "spillway_consumer_lag_messages",
    "Messages behind the partition's end, summed over partitions",
    ["consumer", "topic"],
)
DEADLETTERS = Counter(
    "spillway_deadletters_total",
    "Messages rejected to the dead-letter topic",
    ["source_topic", "kind"],
)
MART_LAST_PUBLICATION = Gauge(
    "spillway_mart_last_publication_timestamp_seconds",
    "UTC epoch seconds of the latest mart publication (0: none yet)",
)
MART_GENERATION = Gauge("spillway_mart_generation", "Generation number of the latest publication")


def start_metrics_server(
    port: int, addr: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on ``addr:port`` in a daemon thread (port 0: any free port, read
    it back from ``server.server_port``). Call ``server.shutdown()`` to stop it."""
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise OSError(f"cannot serve Prometheus metrics on {addr}:{port}: {exc}") from exc
    return server, thread


def metrics_text(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The exposition-format text of ``registry`` (what ``/metrics`` returns)."""
    return generate_latest(registry)
