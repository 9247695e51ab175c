"""``spillway doctor`` against the real broker, each case in a private topic namespace."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from infra.topics import TOPICS, full_name
from schemas.validation import Rejection
from streams import cli, deadletter
from streams.doctor.probes import run_checks
from streams.settings import Settings, get_settings

pytestmark = pytest.mark.kafka


@pytest.fixture
def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[Settings], tuple[int, dict[str, Any]]]]:
    """Run ``spillway doctor --json`` in-process for ``settings``; (exit code, JSON)."""

    def run(settings: Settings) -> tuple[int, dict[str, Any]]:
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
        monkeypatch.setenv("SPILLWAY_TOPIC_NAMESPACE", settings.topic_namespace)
        monkeypatch.setenv("SPILLWAY_HOME", str(settings.home))
        get_settings.cache_clear()
        with pytest.raises(SystemExit) as done:
            cli.main(["doctor", "--json"])
        return int(done.value.code or 0), json.loads(capsys.readouterr().out)

    yield run
    get_settings.cache_clear()


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def test_healthy_namespace_exits_0(
    fresh_namespace_settings: Settings, tmp_path: Path, run_cli
) -> None:
    settings = fresh_namespace_settings.model_copy(update={"home": tmp_path})
    code, report = run_cli(settings)
    assert code == 0 and report["healthy"] is True
    assert _statuses(report) == {
        "broker": "ok", "topics": "ok", "lag": "ok", "deadletter": "ok", "marts": "warn",
    }
    marts = next(c for c in report["checks"] if c["name"] == "marts")
    assert "no mart publication yet" in marts["summary"]
    assert report["bootstrap"] == settings.kafka_bootstrap_servers


def test_missing_topics_exit_1_and_are_named(
    kafka_base_settings: Settings, tmp_path: Path, run_cli
) -> None:
    ns = f"t{uuid.uuid4().hex[:10]}"  # never provisioned
    settings = kafka_base_settings.model_copy(update={"topic_namespace": ns, "home": tmp_path})
    code, report = run_cli(settings)
    assert code == 1 and report["healthy"] is False
    statuses = _statuses(report)
    assert statuses["broker"] == "ok" and statuses["topics"] == "fail"
    assert statuses["deadletter"] == "skip"
    topics = next(c for c in report["checks"] if c["name"] == "topics")
    assert topics["data"]["missing"] == [f"{ns}.{t.name}" for t in TOPICS]


def test_dead_letters_are_counted_by_source_and_kind(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_namespace_settings.model_copy(update={"home": tmp_path})
    ns = settings.topic_namespace
    topic = full_name("deadletter.v1", ns)

    def letter(base: str, kind: str) -> bytes:
        return deadletter.encode(deadletter.envelope(
            topic=full_name(base, ns), partition=0, offset=7, key=None, value=b"{",
            rejection=Rejection(kind, "test"),  # type: ignore[arg-type]
            consumer="test", now_s=time.time(),
        ))

    now_ms = int(time.time() * 1000)
    producer = Producer(settings.librdkafka_config())
    # Two hours old: outside the hour the doctor looks at.
    producer.produce(topic, letter("grid.prices.v1", "schema"), timestamp=now_ms - 7_200_000)
    for base, kind in [("telemetry.gpu.v1", "schema"), ("telemetry.gpu.v1", "schema"),
                       ("grid.prices.v1", "not_json")]:
        producer.produce(topic, letter(base, kind))
    producer.produce(topic, b"garbage")
    assert producer.flush(15) == 0

    report = run_checks(settings)
    check = next(c for c in report.checks if c.name == "deadletter")
    assert check.status == "fail" and not report.healthy
    assert check.data["total"] == 4
    got = {(r["source"], r["kind"]): r["count"] for r in check.data["by_source_kind"]}
    assert got == {
        ("telemetry.gpu.v1", "schema"): 2,
        ("grid.prices.v1", "not_json"): 1,
        ("?", "unreadable envelope"): 1,
    }
    assert "4 messages dead-lettered in the last hour" in check.summary


def test_lag_of_spillway_groups_only(fresh_namespace_settings: Settings, tmp_path: Path) -> None:
    settings = fresh_namespace_settings.model_copy(update={"home": tmp_path})
    topic = full_name("alerts.v1", settings.topic_namespace)  # one partition
    producer = Producer(settings.librdkafka_config())
    for i in range(5):
        producer.produce(topic, str(i).encode())
    assert producer.flush(15) == 0
    ours, theirs = f"spillway-doctor-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    agents = f"{settings.topic_namespace}.spillway-agents-{uuid.uuid4().hex[:8]}"
    for group, committed in ((ours, 2), (agents, 4), (theirs, 0)):
        consumer = KafkaConsumer(group_id=group, enable_auto_commit=False,
                                 **settings.kafka_python_config())
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(committed, "", -1)})
        consumer.close()

    lag = next(c for c in run_checks(settings).checks if c.name == "lag")
    assert lag.status == "ok" and lag.data["groups"] == {ours: 5 - 2, agents: 5 - 4}

    strict = settings.model_copy(update={"doctor_max_lag_messages": 2})
    lag = next(c for c in run_checks(strict).checks if c.name == "lag")
    assert lag.status == "fail" and f"{ours}: 3 messages behind" in lag.details


def test_unreachable_broker_fails_fast(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    started = time.monotonic()
    report = run_checks(settings)
    assert time.monotonic() - started < 10
    assert [c.status for c in report.checks[:4]] == ["fail", "skip", "skip", "skip"]
    assert not report.healthy
