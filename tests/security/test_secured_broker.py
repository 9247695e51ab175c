"""A real secured broker (SASL_SSL + SCRAM-SHA-512 + ACLs) on a free port in a tmp folder.

The broker is started and stopped by this module's fixture. If it cannot start, every test
here FAILS (never skips). Expected verdicts come from the rules as stated: collectors write
telemetry only, BI users only read outputs, strangers and plaintext clients get nothing.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import (
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)
from kafka.errors import KafkaError as PyKafkaError

from infra import broker, security
from infra.provision import provision
from streams.doctor.probes import run_checks
from streams.io.kafka import make_producer
from streams.settings import Settings, load_settings

pytestmark = pytest.mark.kafka


@dataclass
class Secured:
    settings: Settings
    secrets: security.BrokerSecrets
    progress: list[str]

    def as_user(self, user: str) -> Settings:
        return security.client_settings(self.settings, user)


def _free_port_pair() -> int:
    """A port p with p + 1 free too (the controller listener)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port >= 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    pytest.fail("no two consecutive free TCP ports on 127.0.0.1", pytrace=False)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    try:  # the jar cache of the usual settings; fetched once if missing
        libs = broker.ensure_jars(load_settings())
    except broker.BrokerError as exc:
        pytest.fail(f"no Kafka jars for the secured broker: {exc}", pytrace=False)
    home = tmp_path_factory.mktemp("secured")
    port = _free_port_pair()
    settings = Settings(
        home=home, broker_port=port, broker_secure=True, broker_heap_mb=384,
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
    )
    settings.kafka_libs_dir.parent.mkdir(parents=True)
    settings.kafka_libs_dir.symlink_to(libs)
    lines: list[str] = []
    try:
        try:
            broker.start(settings, timeout_s=150, progress=lines.append)
        except broker.BrokerError as exc:
            pytest.fail(f"the secured broker did not start: {exc}", pytrace=False)
        found = security.load_secrets(settings)
        provision(security.client_settings(settings, security.ADMIN))
        yield Secured(settings, found, lines)
    finally:
        broker.stop(settings)


def _send(settings: Settings, topic: str, value: bytes = b"{}", **overrides: Any) -> Any:
    cfg = settings.kafka_python_config() | {"max_block_ms": 15_000} | overrides
    producer = KafkaProducer(**cfg)
    try:
        return producer.send(topic, value).get(timeout=15)
    finally:
        producer.close()


def _first_error(cfg: dict[str, Any], wait_s: float = 15.0) -> KafkaError | None:
    """The first client-level error librdkafka reports for ``cfg`` within ``wait_s``."""
    errors: list[KafkaError] = []
    producer = Producer(cfg | {"error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + wait_s
    while not errors and time.monotonic() < deadline:
        producer.poll(0.1)
    return errors[0] if errors else None


def test_collector_writes_telemetry(secured: Secured) -> None:
    meta = _send(secured.as_user("collector"), "telemetry.gpu.v1")
    assert meta.topic == "telemetry.gpu.v1" and meta.offset >= 0
    # The hot-path client (librdkafka) authenticates with the same settings.
    outcome: list[KafkaError | None] = []
    producer = make_producer(secured.as_user("collector"))
    producer.produce("telemetry.meter.v1", b"{}", on_delivery=lambda e, _m: outcome.append(e))
    producer.flush(15)
    assert outcome == [None]


def test_collector_cannot_write_alerts(secured: Secured) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        _send(secured.as_user("collector"), "alerts.v1")
    outcome: list[KafkaError | None] = []
    producer = make_producer(secured.as_user("collector"))
    producer.produce("alerts.v1", b"{}", on_delivery=lambda e, _m: outcome.append(e))
    producer.flush(15)
    assert [e.code() if e else None for e in outcome] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_bi_reads_outputs_but_writes_nothing(secured: Secured) -> None:
    marker = uuid.uuid4().hex.encode()
    _send(secured.as_user("agent"), "site.power.v1", marker)
    bi = secured.as_user("bi")
    for topic in ("site.power.v1", "alerts.v1", "telemetry.gpu.v1"):
        with pytest.raises(TopicAuthorizationFailedError):
            _send(bi, topic, enable_idempotence=False)
    # An idempotent producer is stopped even earlier: a user with no WRITE grant anywhere
    # may not obtain a producer id (ClusterAuthorizationFailed, KIP-679).
    with pytest.raises(PyKafkaError, match="ClusterAuthorizationFailed"):
        _send(bi, "site.power.v1")
    consumer = KafkaConsumer(
        "site.power.v1", group_id=f"spillway-bi-{marker.decode()[:8]}",
        auto_offset_reset="earliest", **bi.kafka_python_config(),
    )
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while marker not in values and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                values += [m.value for m in batch]
    finally:
        consumer.close()
    assert marker in values


def test_bi_cannot_use_other_groups(secured: Secured) -> None:
    consumer = KafkaConsumer(
        "site.power.v1", group_id="spillway-agents-stolen", consumer_timeout_ms=10_000,
        **secured.as_user("bi").kafka_python_config(),
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            list(consumer)
    finally:
        consumer.close()


def test_wrong_password_is_refused(secured: Secured) -> None:
    bad = secured.as_user("collector").model_copy(
        update={"kafka_sasl_password": security.new_password()}
    )
    err = _first_error(bad.librdkafka_config())
    assert err is not None and err.code() == KafkaError._AUTHENTICATION
    assert "invalid credentials" in err.str()


def test_plaintext_and_untrusted_clients_cannot_connect(secured: Secured) -> None:
    bootstrap = secured.settings.kafka_bootstrap_servers
    assert not broker.answers(bootstrap, timeout_s=2)
    err = _first_error({"bootstrap.servers": bootstrap})
    assert err is not None and err.code() == KafkaError._ALL_BROKERS_DOWN
    # TLS without trusting our CA fails the handshake before any password is sent.
    untrusted = secured.as_user("admin").librdkafka_config()
    untrusted["ssl.ca.location"] = "/etc/ssl/certs/ca-certificates.crt"
    err = _first_error(untrusted)
    assert err is not None and err.code() == KafkaError._SSL
    # The controller port wants a client certificate signed by our CA.
    port = secured.settings.broker_port + 1
    admin_no_cert = secured.as_user("admin").model_copy(update={"kafka_security_protocol": "SSL"})
    assert not broker.answers(f"127.0.0.1:{port}", timeout_s=2, settings=admin_no_cert)


def test_broker_answers_its_admin_and_doctor_works_secured(secured: Secured) -> None:
    status = broker.status(secured.settings)
    assert status.running and status.answers and status.secure
    report = run_checks(secured.as_user("admin"))
    by_name = {c.name: c.status for c in report.checks}
    assert by_name["broker"] == by_name["topics"] == by_name["lag"] == "ok", report.lines()
    assert report.healthy, report.lines()
    assert all(v not in json.dumps(report.as_json()) for v in secured.secrets.values())


def test_no_secret_in_log_output_or_cli(secured: Secured) -> None:
    secrets = secured.secrets.values()
    log = (secured.settings.broker_dir / "broker.log").read_text(errors="replace")
    assert "Kafka Server started" in log or log.strip(), "empty broker log"
    for text in (log, "\n".join(secured.progress)):
        assert all(v not in text for v in secrets)
    env = {
        "SPILLWAY_HOME": str(secured.settings.home),
        "SPILLWAY_BROKER_PORT": str(secured.settings.broker_port),
        "SPILLWAY_BROKER_SECURE": "true",
        "PATH": "/usr/bin:/bin",
    }

    def spillway(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from streams.cli import main; main()", *args],
            capture_output=True, text=True, env=env, timeout=90, check=False,
            cwd=Path(__file__).resolve().parents[2],
        )

    status = spillway("broker", "status")
    assert status.returncode == 0, status.stderr
    assert "SASL_SSL" in status.stdout
    # The doctor finds the admin's credentials itself on the local secured broker.
    doctor = spillway("doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert json.loads(doctor.stdout)["healthy"] is True
    for done in (status, doctor):
        assert all(v not in done.stdout + done.stderr for v in secrets)


def test_secret_files_are_owner_only(secured: Secured) -> None:
    for path in (
        security.credentials_path(secured.settings),
        security.keystore_path(secured.settings),
        secured.settings.broker_dir / "config" / "server.properties",
    ):
        assert path.stat().st_mode & 0o077 == 0, path
    assert not (security.secrets_dir(secured.settings) / "format.args").exists()
