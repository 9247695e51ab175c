"""`broker start` twice, `stop`, `start` again: topics and their data survive."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from infra import broker
from infra.provision import provision
from infra.topics import spec
from streams.io.kafka import TopicProducer, drain, make_consumer
from streams.settings import Settings

pytestmark = pytest.mark.kafka


def test_start_is_idempotent_and_restart_keeps_data(
    tmp_path: Path, kafka_base_settings: Settings
) -> None:
    libs = broker.ensure_jars(kafka_base_settings)
    settings = kafka_base_settings.model_copy(
        update={
            "home": tmp_path,
            "broker_port": 19392,
            "kafka_bootstrap_servers": "127.0.0.1:19392",
        }
    )
    settings.kafka_libs_dir.parent.mkdir(parents=True)
    settings.kafka_libs_dir.symlink_to(libs)
    try:
        first = broker.start(settings)
        again = broker.start(settings)
        assert first.answers and again.pid == first.pid

        provision(settings, [spec("alerts.v1")])
        producer = TopicProducer(settings)
        producer.send("alerts.v1", msgspec.json.encode({"kept": True}), key=b"k")
        producer.flush()

        assert broker.stop(settings)
        assert not broker.status(settings).running
        assert not broker.stop(settings)  # stopping twice is fine

        restarted = broker.start(settings)
        assert restarted.answers and restarted.pid != first.pid
        assert provision(settings, [spec("alerts.v1")]).empty  # topic still there
        consumer = make_consumer(settings, "lifecycle")
        consumer.subscribe(["alerts.v1"])
        got: list = []  # type: ignore[type-arg]
        drain(consumer, got.extend, idle_s=3, max_s=60)
        consumer.close()
        assert [msgspec.json.decode(m.value()) for m in got] == [{"kept": True}]
    finally:
        broker.stop(settings)


def test_failed_start_names_the_log(tmp_path: Path, kafka_base_settings: Settings) -> None:
    libs = broker.ensure_jars(kafka_base_settings)
    # Port taken by the session broker's controller: Kafka must fail and we must say where.
    settings = kafka_base_settings.model_copy(
        update={"home": tmp_path, "broker_port": kafka_base_settings.broker_port - 1}
    )
    settings.kafka_libs_dir.parent.mkdir(parents=True)
    settings.kafka_libs_dir.symlink_to(libs)
    with pytest.raises(broker.BrokerError, match="broker.log"):
        broker.start(settings, timeout_s=60)
    broker.stop(settings)
