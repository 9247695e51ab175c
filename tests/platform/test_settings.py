from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import load_settings


def test_env_overrides_file_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "spillway.toml"
    cfg.write_text('topic_namespace = "fromfile"\nbroker_port = 19000\n')
    monkeypatch.setenv("SPILLWAY_CONFIG", str(cfg))
    monkeypatch.setenv("SPILLWAY_BROKER_PORT", "19500")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-a:9092,kafka-b:9092")
    s = load_settings()
    assert s.topic_namespace == "fromfile"
    assert s.broker_port == 19500
    assert s.kafka_python_config()["bootstrap_servers"] == ["kafka-a:9092", "kafka-b:9092"]


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPILLWAY_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("SPILLWAY_KAFKA_SASL_USERNAME", "collector")
    monkeypatch.setenv("SPILLWAY_KAFKA_SASL_PASSWORD", "hunter2")
    s = load_settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.redacted())
    assert s.librdkafka_config()["sasl.password"] == "hunter2"


def test_bad_values_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPILLWAY_BROKER_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="broker_port"):
        load_settings()
    monkeypatch.delenv("SPILLWAY_BROKER_PORT")
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    monkeypatch.setenv("SPILLWAY_CONFIG", str(bad))
    with pytest.raises(ValueError, match="cannot read settings file"):
        load_settings()
