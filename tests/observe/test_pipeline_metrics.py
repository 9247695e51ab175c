"""The pipeline feeds the Prometheus metrics: the per-batch counting helpers (no broker),
and a live agents worker started with ``--metrics-port`` (real broker, scraped over HTTP).

Counters live in the process-wide registry that other tests also move, so every check is
on the difference before/after, with label values of its own where it can.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.events import MinerCommand
from streams.marts.publish import PublishResult
from streams.marts.sink import CountingValidator, count_batch, note_publication
from streams.observe import metrics
from streams.settings import Settings, get_settings
from tests.agents.helpers import SMALL, Second, frames, produce, small_site, worker
from tests.observe.helpers import T0, alert, curtailment, power, surplus


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(name: str, labels: dict[str, str], text: str | None = None) -> float:
    """The sample's value in ``text`` (default: this process's registry); 0 when absent."""
    got = parse(text if text is not None else metrics.metrics_text().decode())
    return got.get((name, frozenset(labels.items())), 0.0)


def total(name: str, text: str, **match: str) -> float:
    """Sum of ``name`` over every label set containing ``match``."""
    return sum(
        v
        for (n, labels), v in parse(text).items()
        if n == name and set(match.items()) <= labels
    )


# ---------------------------------------------------------------- counting helpers


@pytest.mark.parametrize(
    ("messages", "readings", "want_messages", "want_readings"),
    [
        (3, 690, 3.0, 690.0),  # three GPU frames of 230 readings
        (1, 0, 1.0, 0.0),  # a message with no readings (grid, partials)
        (0, 0, 0.0, 0.0),  # an empty batch creates no series
    ],
)
def test_count_consumed_adds_a_batch(
    messages: int, readings: int, want_messages: float, want_readings: float
) -> None:
    topic = f"test.consumed.{messages}.{readings}"
    before_m = sample("spillway_messages_in_total", {"consumer": "c", "topic": topic})
    before_r = sample("spillway_readings_in_total", {"topic": topic})
    metrics.count_consumed("c", topic, messages, readings)
    after_m = sample("spillway_messages_in_total", {"consumer": "c", "topic": topic})
    after_r = sample("spillway_readings_in_total", {"topic": topic})
    assert after_m - before_m == want_messages
    assert after_r - before_r == want_readings


@pytest.mark.parametrize(
    "by_kind",
    [{"not_json": 2, "schema": 1}, {"unknown_site": 0}, {}],
    ids=["two-kinds", "zero-count", "none"],
)
def test_count_deadletters_by_kind(by_kind: dict[str, int]) -> None:
    source = f"test.dead.{len(by_kind)}"
    before = {k: sample("spillway_deadletters_total", {"source_topic": source, "kind": k})
              for k in by_kind}
    metrics.count_deadletters(source, by_kind)
    for kind, n in by_kind.items():
        after = sample("spillway_deadletters_total", {"source_topic": source, "kind": kind})
        assert after - before[kind] == n


def test_count_decisions_by_topic_and_kind() -> None:
    cmd = MinerCommand(
        command_id="k1", site_id="s1", event_id="c1", issued_at_s=T0, action="sleep",
        miner_ids=["m1", "m2"], priority=1, deadline_s=T0 + 60,
    )
    out: dict[str, Any] = {
        "powers": [power(T0), power(T0 + 1), power(T0 + 2)],
        "surplus": [surplus("open"), surplus("update"), surplus("update")],
        "commands": [cmd],
        "curtailments": [curtailment("issued")],
        "alerts": [alert(condition="miner_underhashing")],
    }
    # One decision per message, labelled by the field that says what kind it is.
    expected = {
        ("site.power.v1", "second"): 3.0,
        ("surplus.events.v1", "open"): 1.0,
        ("surplus.events.v1", "update"): 2.0,
        ("miners.commands.v1", "sleep"): 1.0,
        ("curtailment.events.v1", "issued"): 1.0,
        ("alerts.v1", "miner_underhashing"): 1.0,
    }

    def read() -> dict[tuple[str, str], float]:
        return {(t, k): sample("spillway_decisions_out_total", {"topic": t, "kind": k})
                for t, k in expected}

    before = read()
    metrics.count_decisions(**out)
    after = read()
    assert {key: after[key] - before[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("emitted_after_s", "bucket", "in_bucket"),
    [
        # A second [ts, ts+1) emitted at ts + 1.3 is 0.3 s late: within 0.5, not 0.25.
        (1.3, "0.5", 1.0),
        (1.3, "0.25", 0.0),
        # Emitted exactly at the end of its second: zero latency, in the lowest bucket.
        (1.0, "0.05", 1.0),
        # 11 s after the end: beyond the top finite bucket (10), only in +Inf.
        (12.0, "10.0", 0.0),
        (12.0, "+Inf", 1.0),
    ],
)
def test_decision_latency_runs_from_the_end_of_the_second(
    emitted_after_s: float, bucket: str, in_bucket: float
) -> None:
    labels = {"stage": "site_power", "le": bucket}
    name = "spillway_decision_latency_seconds"
    before_b = sample(f"{name}_bucket", labels)
    before_sum = sample(f"{name}_sum", {"stage": "site_power"})
    metrics.count_decisions(powers=[power(T0, emitted_after_s=emitted_after_s)])
    assert sample(f"{name}_bucket", labels) - before_b == in_bucket
    assert sample(f"{name}_sum", {"stage": "site_power"}) - before_sum == pytest.approx(
        emitted_after_s - 1.0
    )


class FakeMessage:
    """The part of a confluent-kafka Message that the sink's counting reads."""

    def __init__(self, topic: str, value: bytes = b"{}") -> None:
        self._topic = topic
        self._value = value

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes:
        return self._value


def test_sink_counts_a_batch_per_base_topic() -> None:
    msgs = [FakeMessage("ns1.site.power.v1")] * 3 + [FakeMessage("ns1.alerts.v1")]
    keys = {"site.power.v1": 3.0, "alerts.v1": 1.0}
    before = {t: sample("spillway_messages_in_total", {"consumer": "sink-t", "topic": t})
              for t in keys}
    count_batch("sink-t", msgs, "ns1")  # type: ignore[arg-type]
    for t, n in keys.items():
        after = sample("spillway_messages_in_total", {"consumer": "sink-t", "topic": t})
        assert after - before[t] == n


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value))


def test_sink_validator_counts_each_dead_letter() -> None:
    producer = FakeProducer()
    validator = CountingValidator(get_settings(), producer, "sink-t")  # type: ignore[arg-type]
    labels = {"source_topic": "site.power.v1", "kind": "not_json"}
    before = sample("spillway_deadletters_total", labels)
    got = validator.decode_batch([FakeMessage("site.power.v1", b"not json")] * 2)  # type: ignore[list-item]
    assert got == []
    assert len(producer.sent) == 2
    assert sample("spillway_deadletters_total", labels) - before == 2.0


@pytest.mark.parametrize(
    ("result", "want_generation", "want_at_s"),
    [
        (PublishResult(generation=13), 13.0, 1_763_000_900.0),
        # A skipped publication (nothing changed) leaves the gauges where they were.
        (PublishResult(generation=99, skipped=True), 12.0, 1_763_000_500.0),
        # Something that is not a publication result (a test publisher) is ignored.
        (None, 12.0, 1_763_000_500.0),
    ],
    ids=["published", "skipped", "not-a-result"],
)
def test_publication_sets_the_gauges(
    result: object, want_generation: float, want_at_s: float
) -> None:
    metrics.record_publication(12, 1_763_000_500.0)
    note_publication(result, 1_763_000_900.0)
    assert sample("spillway_mart_generation", {}) == want_generation
    assert sample("spillway_mart_last_publication_timestamp_seconds", {}) == want_at_s


# ---------------------------------------------------------------- live worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text: str = resp.read().decode()
            return text
    except OSError:
        return None


@pytest.mark.kafka
def test_agents_worker_serves_its_counts(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_namespace_settings
    site = small_site()
    t0 = int(time.time()) - 30
    burst: list[tuple[str, bytes, bytes]] = []
    readings = 0
    for i in range(6):
        out = frames(site, Second(ts_s=t0 + i + 0.5), i, nodes_per_rack=1, miners_per_rack=10)
        burst.extend((t, k, v) for t, k, v, _ in out)
        readings += sum(n for *_, n in out)
    port = free_port()
    log = tmp_path / "worker.log"
    args = ("--site", str(SMALL), "--tick", "event", "--lateness", "1",
            "--metrics-port", str(port), "--data-dir", str(tmp_path / "db"))
    text = ""
    with worker(settings, *args, log=log) as proc:
        produce(settings, burst)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            text = scrape(port) or ""
            if text and total("spillway_decisions_out_total", text, topic="site.power.v1") > 0 \
                    and total("spillway_readings_in_total", text) >= readings:
                break
            time.sleep(0.5)
        alive = proc.poll() is None
    detail = f"\n--- worker ---\n{log.read_text()[-3000:]}"
    assert alive, f"worker exited{detail}"
    # Every reading sent is counted once, by telemetry topic.
    assert total("spillway_readings_in_total", text) == readings, detail
    assert total("spillway_messages_in_total", text, consumer="spillway-agents",
                 topic="telemetry.meter.v1") == 6, detail
    assert total("spillway_decisions_out_total", text, topic="site.power.v1") > 0, detail
    assert total("spillway_decision_latency_seconds_count", text) > 0, detail
    assert total("spillway_deadletters_total", text) == 0, detail
