from __future__ import annotations

import pytest

from infra.provision import Existing, plan
from infra.topics import TOPICS, TopicSpec, base_name, full_name
from schemas.registry import CONTRACTS


def test_every_topic_has_a_contract_and_back() -> None:
    assert {t.name for t in TOPICS} == set(CONTRACTS)


def test_names_are_versioned_and_unique() -> None:
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    assert all(n.rsplit(".", 1)[-1].startswith("v") for n in names)


def test_site_config_is_compacted() -> None:
    assert next(t for t in TOPICS if t.name == "site.config.v1").cleanup_policy == "compact"


SPEC = TopicSpec("grid.prices.v1", 2, "k", "p", retention_ms=1000)
OK_CFG = {"cleanup.policy": "delete", "retention.ms": "1000"}


@pytest.mark.parametrize(
    ("existing", "create", "grow", "reconfigure", "refused"),
    [
        ({}, 1, 0, 0, 0),
        ({"grid.prices.v1": Existing(2, OK_CFG)}, 0, 0, 0, 0),
        ({"grid.prices.v1": Existing(1, OK_CFG)}, 0, 1, 0, 0),
        ({"grid.prices.v1": Existing(3, OK_CFG)}, 0, 0, 0, 1),
        ({"grid.prices.v1": Existing(2, {**OK_CFG, "retention.ms": "5"})}, 0, 0, 1, 0),
    ],
    ids=["missing", "in-sync", "grow", "shrink-refused", "config-drift"],
)
def test_plan(existing, create, grow, reconfigure, refused) -> None:
    p = plan([SPEC], existing)
    assert (len(p.create), len(p.grow), len(p.reconfigure), len(p.refused)) == (
        create,
        grow,
        reconfigure,
        refused,
    )
    if refused:
        assert "cannot shrink" in p.refused[0]


def test_namespace_round_trip() -> None:
    assert full_name("alerts.v1", "t1") == "t1.alerts.v1"
    assert base_name("t1.alerts.v1", "t1") == "alerts.v1"
    with pytest.raises(KeyError, match="unknown topic"):
        full_name("alerts.v2")
