"""One typed settings object for the whole of Spillway.

Values come, highest priority first, from environment variables, then an optional TOML
file named by ``SPILLWAY_CONFIG``, then the defaults below. ``KAFKA_BOOTSTRAP_SERVERS`` is
read without a prefix because that is the name Kafka users already export; every other
variable is ``SPILLWAY_<FIELD>`` (``SPILLWAY_HOME``, ``SPILLWAY_KAFKA_SASL_PASSWORD`` ...).
Secrets are ``SecretStr``: they print as ``**********``.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_CHECKOUT = Path(__file__).resolve().parents[1]


def _default_home() -> Path:
    """``.spillway`` of the source checkout Spillway runs from (where ``infra/run.sh`` and
    ``infra/test.sh`` put the broker and the marts), else the user's data folder."""
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "infra").is_dir():
        return _CHECKOUT / ".spillway"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "spillway"


def default_home() -> Path:
    """The home used when ``SPILLWAY_HOME`` is not set."""
    return _default_home()


class Settings(BaseSettings):
    """Everything Spillway can be told. Frozen: build a new one to change it."""

    model_config = SettingsConfigDict(env_prefix="SPILLWAY_", frozen=True, extra="forbid")

    home: Path = Field(default_factory=_default_home)
    """Working folder: broker data and logs, Kafka jars, marts, reports."""

    kafka_bootstrap_servers: str = Field(
        default="",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "SPILLWAY_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    """Comma-separated host:port list; empty means the local broker (``broker_port``).
    Point it at an existing cluster to skip the local broker."""

    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None

    topic_namespace: str = ""
    """Prefix for every topic name (``""`` in production; tests use a random one)."""

    topic_replication_factor: int = Field(default=1, ge=1)
    """Replication factor used when provisioning (3 on a real cluster)."""

    broker_port: int = Field(default=9092, ge=1, le=65535)
    """Port of the broker that `spillway broker start` runs (its controller uses port + 1)."""

    broker_heap_mb: int = Field(default=768, ge=256)

    broker_secure: bool = False
    """Run the local broker secured: SASL_SSL with SCRAM-SHA-512 users, ACLs, TLS certificates
    made on first start (``infra.security``). Clients then need the kafka_* security fields."""

    sink_memory_mb: int = Field(default=1024, ge=64)
    """DuckDB memory limit of the mart sink (its buffer cache otherwise grows toward 80% of
    RAM as the database grows); spills to disk beyond it."""

    restatement_horizon_s: float = Field(default=2 * 86_400.0, gt=0)
    """The sink applies a restatement of a second of site power (late readings,
    ``site.power.restated.v1``) only when it was restated within this many seconds of the
    second; later ones go to the dead-letter topic (kept, not applied), so a day is not
    silently rewritten once its money has been reported."""

    doctor_max_lag_messages: int = Field(default=10_000, ge=0)
    """``spillway doctor`` reports a Spillway consumer group lagging by more than this."""

    kafka_version: str = "4.1.1"

    max_frame_bytes: int = Field(default=1_048_576, ge=1024)
    """Frames larger than this go to the dead-letter topic unread."""

    max_clock_skew_s: float = Field(default=300.0, gt=0)
    """Readings stamped further than this in the future are rejected."""

    max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    """Readings older than this (relative to wall clock) are rejected; replay raises it."""

    @model_validator(mode="after")
    def _local_broker_by_default(self) -> Settings:
        if not self.kafka_bootstrap_servers:
            object.__setattr__(self, "kafka_bootstrap_servers", f"127.0.0.1:{self.broker_port}")
        return self

    @property
    def broker_dir(self) -> Path:
        return self.home / "broker"

    @property
    def kafka_libs_dir(self) -> Path:
        return self.home / "kafka-libs" / self.kafka_version

    @property
    def marts_dir(self) -> Path:
        return self.home / "marts"

    def kafka_python_config(self) -> dict[str, Any]:
        """Connection settings in kafka-python's spelling."""
        cfg: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            cfg["sasl_mechanism"] = self.kafka_sasl_mechanism
            cfg["sasl_plain_username"] = self.kafka_sasl_username
            cfg["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        if self.kafka_ssl_cafile:
            cfg["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return cfg

    def librdkafka_config(self) -> dict[str, Any]:
        """Connection settings in librdkafka's (confluent-kafka's) spelling."""
        cfg: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            cfg["sasl.mechanism"] = self.kafka_sasl_mechanism
            cfg["sasl.username"] = self.kafka_sasl_username or ""
            cfg["sasl.password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
            )
        if self.kafka_ssl_cafile:
            cfg["ssl.ca.location"] = str(self.kafka_ssl_cafile)
        return cfg

    def redacted(self) -> dict[str, Any]:
        """The settings as printable data; secrets stay masked."""
        return {k: (str(v) if isinstance(v, SecretStr | Path) else v) for k, v in self}


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, the optional TOML file, then ``overrides``."""
    file_values: dict[str, Any] = {}
    path = os.environ.get("SPILLWAY_CONFIG")
    if path:
        try:
            file_values = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read settings file SPILLWAY_CONFIG={path}: {exc}") from exc
    env_set = {name for name in Settings.model_fields if _env_has(name)}
    merged = {k: v for k, v in file_values.items() if k not in env_set} | overrides
    return Settings(**merged)


def _env_has(field: str) -> bool:
    if field == "kafka_bootstrap_servers" and "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
        return True
    return f"SPILLWAY_{field.upper()}" in os.environ


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
