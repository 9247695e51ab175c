"""Shared fixtures. The Kafka fixtures talk to a real Apache Kafka broker.

Where the broker comes from: ``KAFKA_BOOTSTRAP_SERVERS`` if something answers there;
otherwise (outside CI) the project's own broker is started with ``infra.broker.start``.
Under CI (``CI=true``) .ci/run starts the broker; if it does not answer the Kafka tests FAIL.
They never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from infra import broker
from infra.provision import delete_namespace, provision
from streams.settings import Settings, load_settings


def _ensure_broker() -> Settings:
    settings = load_settings()
    if broker.answers(settings.kafka_bootstrap_servers):
        return settings
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            f"no Kafka broker answers on {settings.kafka_bootstrap_servers}: .ci/run must start "
            "it (spillway broker start) before the tests",
            pytrace=False,
        )
    try:
        broker.start(settings)
    except broker.BrokerError as exc:
        pytest.fail(f"could not start the local Kafka broker: {exc}", pytrace=False)
    return settings


@pytest.fixture(scope="session")
def kafka_base_settings() -> Settings:
    return _ensure_broker()


@pytest.fixture(scope="session")
def kafka_settings(kafka_base_settings: Settings) -> Iterator[Settings]:
    """Settings with a private topic namespace for this test session, topics provisioned."""
    yield from _namespace(kafka_base_settings)


@pytest.fixture
def fresh_namespace_settings(kafka_base_settings: Settings) -> Iterator[Settings]:
    """Settings with a namespace of its own and its topics provisioned: empty topics."""
    yield from _namespace(kafka_base_settings)


def _namespace(base: Settings) -> Iterator[Settings]:
    ns = f"t{uuid.uuid4().hex[:10]}"
    settings = base.model_copy(update={"topic_namespace": ns})
    provision(settings)
    yield settings
    delete_namespace(settings)
