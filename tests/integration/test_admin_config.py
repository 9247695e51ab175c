"""The admin client's settings carry the security of ``Settings`` (no broker needed)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from infra.admin import admin_config
from streams.settings import Settings


def test_sasl_ssl_settings_reach_the_admin_client(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    settings = Settings(
        kafka_bootstrap_servers="broker-1:9093,broker-2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="spillway-admin",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile=ca,
    )
    cfg = admin_config(settings, "spillway-x", request_timeout_s=10.0, bootstrap_timeout_s=3.0)
    assert cfg == {
        "client_id": "spillway-x",
        "bootstrap_servers": ["broker-1:9093", "broker-2:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "spillway-admin",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": str(ca),
        "request_timeout_ms": 10_000,
        "bootstrap_timeout_ms": 3_000,
    }


def test_plaintext_settings_carry_no_credentials() -> None:
    cfg = admin_config(Settings(kafka_bootstrap_servers="127.0.0.1:9092"), "spillway-x")
    assert cfg == {
        "client_id": "spillway-x",
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "PLAINTEXT",
    }


def test_every_key_is_one_kafka_python_accepts() -> None:
    from kafka.admin import KafkaAdminClient

    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"),
        kafka_ssl_cafile=Path("/ca.pem"),
    )
    cfg = admin_config(settings, "x", request_timeout_s=1, bootstrap_timeout_s=1)
    assert set(cfg) <= set(KafkaAdminClient.DEFAULT_CONFIG)


def test_a_member_assignment_is_read_decoded_or_as_bytes() -> None:
    from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment

    from infra.admin import assigned_partitions

    raw = ConsumerProtocolAssignment(
        assigned_partitions=[
            ConsumerProtocolAssignment.TopicPartition(topic="t", partitions=[0, 2]),
            ConsumerProtocolAssignment.TopicPartition(topic="u", partitions=[1]),
        ],
        user_data=b"",
    ).encode(version=0)
    want = {("t", 0), ("t", 2), ("u", 1)}
    assert assigned_partitions(raw) == want
    decoded = ConsumerProtocolAssignment.decode(raw).to_dict()
    assert assigned_partitions(decoded) == want
    assert assigned_partitions(b"") == frozenset() and assigned_partitions(None) == frozenset()
