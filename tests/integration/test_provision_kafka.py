from __future__ import annotations

import dataclasses

import pytest

from infra.provision import ProvisionError, provision
from infra.topics import TOPICS
from streams.settings import Settings

pytestmark = pytest.mark.kafka


def test_provisioning_is_idempotent_and_refuses_to_shrink(
    fresh_namespace_settings: Settings,
) -> None:
    settings = fresh_namespace_settings  # already provisioned once by the fixture
    assert provision(settings).empty

    grown = [
        dataclasses.replace(t, partitions=t.partitions + 1) if t.name == "alerts.v1" else t
        for t in TOPICS
    ]
    changed = provision(settings, grown)
    assert changed.grow == [(f"{settings.topic_namespace}.alerts.v1", 1, 2)]
    assert provision(settings, grown).empty

    with pytest.raises(ProvisionError, match="cannot shrink"):
        provision(settings)
