"""Decisions depend on event time only: one recording replayed through the agents at 60x
real time and as fast as possible gives the same curtailment events and miner commands, row
for row (their ids aside).

The recording: the real miner captures of ``tests.replay.real_fleet`` scraped every 5 s (the
ASIC collector's default), a revenue meter every second, and the real LZ_WEST RT prices of
2025-07-01 05:00 to 05:50 CDT (65.53, 74.51, 88.77 then 30.19 $/MWh), which cross the
breakevens of the fleet's models (43 to 118 $/MWh at $50/PH/day) both ways. Each speed runs
in a namespace of its own, with its own worker, ticks off: event-time ticks move the
controller clock by the wall time between them (to keep deadlines running while telemetry
stalls), so with them a deadline miss can be stamped a fraction of a second apart; a replay
that must be reproduced row for row runs with ``--tick off``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from infra.provision import delete_namespace, provision
from schemas.events import CurtailmentEvent, MinerCommand, SitePower
from streams.agents.sites import publish_site
from streams.replay import scenario
from streams.replay.records import Record, merge
from streams.replay.runner import send
from streams.settings import Settings
from tests.agents.helpers import Collector, log_tails_on_failure, worker
from tests.replay.real_fleet import asic_records, fleet_site, poi_records, real_models

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

START = 1_751_364_000
"""2025-07-01T10:00:00Z, 05:00 CDT."""
MEASURED_S = 50 * 60
TAIL_S = 120
PRICES = Path(__file__).parents[2] / "infra" / "scenarios" / "h100-ercot-day.toml"
TEN_YEARS_S = 10 * 365 * 86_400.0
IDS = ("event_id", "command_id")


def recording(site_id: str) -> dict[str, Any]:
    end = START + MEASURED_S + TAIL_S
    models = real_models()
    sc = scenario.load(PRICES)
    prices: list[Record] = [
        r
        for name, recs in scenario.sources(sc).items()
        if name.startswith("prices")
        for r in recs
        if START - 900 <= r.ts_s < end
    ]
    return {
        "prices": prices,
        "asic": asic_records(site_id, models, 5.0, START, end),
        "poi": poi_records(site_id, models, START, end),
    }


@contextmanager
def namespace(base: Settings) -> Iterator[Settings]:
    settings = base.model_copy(
        update={"topic_namespace": f"t{uuid.uuid4().hex[:10]}", "max_age_s": TEN_YEARS_S}
    )
    provision(settings)
    try:
        yield settings
    finally:
        delete_namespace(settings)


def replay_decisions(
    base: Settings, site_id: str, speed: float | None, tmp: Path
) -> dict[str, list[dict[str, Any]]]:
    """The curtailment events and miner commands of one replay at ``speed`` (None: as fast
    as possible), ids left out, in the order the agents sent them."""
    models = real_models()
    site = fleet_site(site_id, models, asic_staleness_s=15.0, start_s=START)
    with namespace(base) as settings:
        publish_site(settings, site)
        types: dict[str, type[Any]] = {
            "site.power.v1": SitePower,
            "curtailment.events.v1": CurtailmentEvent,
            "miners.commands.v1": MinerCommand,
        }
        col = Collector(settings, types)
        log = tmp / f"agents-{speed}.log"
        args = ("--site", site_id, "--tick", "off", "--max-open", "3600")
        try:
            with log_tails_on_failure([log]), worker(settings, *args, log=log):
                send(settings, merge(recording(site_id)), speed, label="event-time")
                last = START + MEASURED_S
                col.until(
                    lambda g: any(p.ts_s >= last for p in g["site.power.v1"]),
                    120,
                    f"SitePower {last}",
                )
                got = col.settle(3.0)
        finally:
            col.close()
    out: dict[str, list[dict[str, Any]]] = {}
    for topic in ("curtailment.events.v1", "miners.commands.v1"):
        rows = [msgspec.to_builtins(m) for m in got[topic]]
        # Only what the measured window decided: the tail's last seconds close on wall clock.
        rows = [r for r in rows if r.get("ts_s", r.get("issued_at_s")) < START + MEASURED_S]
        out[topic] = [{k: v for k, v in r.items() if k not in IDS} for r in rows]
    return out


# Until prices stopped moving the controller's clock (a price waits for telemetry or ticks to
# reach its publication time), a price that arrived ahead of the telemetry of the seconds
# before it moved the clock forward and a missed deadline was reported at the price's time
# when replayed as fast as possible. This test holds that repair.


def test_the_same_replay_at_two_speeds_gives_the_same_decisions(
    kafka_base_settings: Settings, tmp_path: Path
) -> None:
    site_id = f"evt-{uuid.uuid4().hex[:6]}"
    fast = replay_decisions(kafka_base_settings, site_id, None, tmp_path)
    paced = replay_decisions(kafka_base_settings, site_id, 60.0, tmp_path)
    assert fast["curtailment.events.v1"], "the prices should curtail some models"
    assert fast["miners.commands.v1"]
    for topic in fast:
        assert len(paced[topic]) == len(fast[topic]), topic
        for i, (a, b) in enumerate(zip(fast[topic], paced[topic], strict=True)):
            differ = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
            assert not differ, f"{topic} row {i} (fast, 60x): {differ}"
