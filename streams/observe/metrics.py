"""Prometheus metrics the pipeline exports, defined once so every process names them alike.

Producers of the numbers (agents, sinks, the observer) import the metric objects below and
update them; ``start_metrics_server(port)`` serves them from a process that has no web
server of its own, and the dashboard serves the same registry at ``/metrics``.

Names follow Prometheus conventions: base units (seconds, messages), ``_total`` counters.
"""

from __future__ import annotations

import threading
from collections import Counter as CounterOf
from collections.abc import Mapping, Sequence
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

from schemas.events import Alert, CurtailmentEvent, MinerCommand, SitePower, SurplusEvent

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
    "Decisions emitted: site-power seconds, surplus and curtailment events, miner commands, alerts",
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
OUT_OF_SEQUENCE = Counter(
    "spillway_out_of_sequence_messages_total",
    "Messages the consumer delivered out of sequence: 'redelivered' (processed already; "
    "stage 1 drops them, stage 2 runs them again), 'read_back' (skipped by the consumer, "
    "read back from Kafka), 'lost' (skipped and no longer on the broker)",
    ["consumer", "topic", "kind"],
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


# ---------------------------------------------------------------- counting helpers
# The pipeline calls these once per batch (not per reading or message) so the hot path pays
# a few label look-ups per batch, whatever its size.

SITE_POWER_KIND = "second"
"""``kind`` label of ``site.power.v1`` decisions (one per closed site-second)."""


def count_consumed(consumer: str, topic: str, messages: int, readings: int = 0) -> None:
    """``messages`` Kafka messages of base ``topic`` consumed by ``consumer``, carrying
    ``readings`` telemetry readings (0 for topics that are not telemetry)."""
    if messages:
        MESSAGES_IN.labels(consumer, topic).inc(messages)
    if readings:
        READINGS_IN.labels(topic).inc(readings)


def count_out_of_sequence(consumer: str, topic: str, kind: str, messages: int) -> None:
    """See ``OUT_OF_SEQUENCE``; ``topic`` is the full topic name."""
    if messages:
        OUT_OF_SEQUENCE.labels(consumer, topic, kind).inc(messages)


def count_deadletters(source_topic: str, by_kind: Mapping[str, int]) -> None:
    """Rejections of messages from base ``source_topic``, counted by rejection kind."""
    for kind, n in by_kind.items():
        if n:
            DEADLETTERS.labels(source_topic, kind).inc(n)


def count_decisions(
    *,
    powers: Sequence[SitePower] = (),
    surplus: Sequence[SurplusEvent] = (),
    commands: Sequence[MinerCommand] = (),
    curtailments: Sequence[CurtailmentEvent] = (),
    alerts: Sequence[Alert] = (),
) -> None:
    """Decisions emitted by one batch, and the latency of each site-second.

    A second ``ts_s`` covers readings up to ``ts_s + 1``, so its latency is measured from
    the end of the second: ``emitted_s - (ts_s + 1)``.
    """
    if powers:
        DECISIONS_OUT.labels("site.power.v1", SITE_POWER_KIND).inc(len(powers))
        latency = DECISION_LATENCY.labels("site_power")
        for p in powers:
            latency.observe(p.emitted_s - (p.ts_s + 1))
    groups: tuple[tuple[str, CounterOf[str]], ...] = (
        ("surplus.events.v1", CounterOf(e.kind for e in surplus)),
        ("miners.commands.v1", CounterOf(c.action for c in commands)),
        ("curtailment.events.v1", CounterOf(e.kind for e in curtailments)),
        ("alerts.v1", CounterOf(a.condition for a in alerts)),
    )
    for topic, kinds in groups:
        for kind, n in kinds.items():
            DECISIONS_OUT.labels(topic, kind).inc(n)


def record_publication(generation: int, at_s: float) -> None:
    """A mart publication of ``generation`` finished at UTC epoch seconds ``at_s``."""
    MART_GENERATION.set(generation)
    MART_LAST_PUBLICATION.set(at_s)
