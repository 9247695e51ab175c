"""Prometheus metrics and structured JSON logs."""

from __future__ import annotations

import io
import json
import logging
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from streams.observe import metrics
from streams.observe.logs import configure_logging


def sample(name: str, labels: dict[str, str]) -> float | None:
    text = metrics.metrics_text().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


@pytest.mark.parametrize(
    ("update", "name", "labels", "delta"),
    [
        (lambda: metrics.READINGS_IN.labels("telemetry.gpu.v1").inc(230),
         "spillway_readings_in_total", {"topic": "telemetry.gpu.v1"}, 230.0),
        (lambda: metrics.DECISIONS_OUT.labels("curtailment.events.v1", "issued").inc(),
         "spillway_decisions_out_total", {"topic": "curtailment.events.v1", "kind": "issued"},
         1.0),
        (lambda: metrics.DEADLETTERS.labels("telemetry.asic.v1", "not_json").inc(3),
         "spillway_deadletters_total", {"source_topic": "telemetry.asic.v1", "kind": "not_json"},
         3.0),
        (lambda: metrics.count_out_of_sequence("agents", "ns.telemetry.gpu.v1", "read_back", 4),
         "spillway_out_of_sequence_messages_total",
         {"consumer": "agents", "topic": "ns.telemetry.gpu.v1", "kind": "read_back"}, 4.0),
        (lambda: metrics.DECISION_LATENCY.labels("site_power").observe(0.3),
         "spillway_decision_latency_seconds_bucket", {"stage": "site_power", "le": "0.5"}, 1.0),
        (lambda: metrics.DECISION_LATENCY.labels("site_power").observe(0.3),
         "spillway_decision_latency_seconds_bucket", {"stage": "site_power", "le": "0.25"}, 0.0),
    ],
)
def test_counters_and_histogram_move(update, name, labels, delta):
    before = sample(name, labels) or 0.0
    update()
    assert sample(name, labels) == pytest.approx(before + delta)


def test_gauges_hold_the_value_set():
    metrics.CONSUMER_LAG.labels("sink", "site.power.v1").set(17)
    metrics.MART_LAST_PUBLICATION.set(1_763_000_000)
    assert sample("spillway_consumer_lag_messages",
                  {"consumer": "sink", "topic": "site.power.v1"}) == 17
    assert sample("spillway_mart_last_publication_timestamp_seconds", {}) == 1_763_000_000


def test_metrics_server_serves_on_localhost():
    registry = CollectorRegistry()
    Counter("spillway_test_total", "test", registry=registry).inc(5)
    server, _thread = metrics.start_metrics_server(0, registry=registry)
    try:
        assert server.server_address[0] == "127.0.0.1"
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        body = urllib.request.urlopen(url, timeout=5).read().decode()
        assert "spillway_test_total 5.0" in body
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_server_port_in_use_says_which():
    server, _ = metrics.start_metrics_server(0, registry=CollectorRegistry())
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{server.server_port}"):
            metrics.start_metrics_server(server.server_port, registry=CollectorRegistry())
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_carry_extra_fields(restore_root_logging):
    buf = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=buf)
    logging.getLogger("spillway.test").warning(
        "late reading on %s", "telemetry.gpu.v1",
        extra={"topic": "telemetry.gpu.v1", "partition": 2, "offset": 1234, "obj": object()})
    line = json.loads(buf.getvalue().strip())
    assert line["level"] == "warning"
    assert line["logger"] == "spillway.test"
    assert line["msg"] == "late reading on telemetry.gpu.v1"
    assert (line["topic"], line["partition"], line["offset"]) == ("telemetry.gpu.v1", 2, 1234)
    assert line["obj"].startswith("<object object")
    assert line["ts"].endswith("+00:00")


def test_json_logs_include_the_exception(restore_root_logging):
    buf = io.StringIO()
    configure_logging(json=True, stream=buf)
    try:
        raise ValueError("bad frame")
    except ValueError:
        logging.getLogger("spillway.test").exception("decode failed")
    line = json.loads(buf.getvalue().strip())
    assert "ValueError: bad frame" in line["exc"]


def test_configure_logging_twice_installs_one_handler(restore_root_logging):
    buf = io.StringIO()
    configure_logging(json=True, stream=io.StringIO())
    configure_logging(json=False, stream=buf)
    logging.getLogger("spillway.test").info("hello")
    assert buf.getvalue().rstrip().endswith("INFO spillway.test: hello")
    assert sum(h.get_name() == "spillway" for h in logging.getLogger().handlers) == 1
