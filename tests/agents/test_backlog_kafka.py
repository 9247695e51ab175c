"""A backlog (what an accelerated run produces): telemetry for many seconds in one burst.

Stage 1 works through the telemetry partitions unevenly: the meter partition's partials run
minutes of event time ahead of the GPU and ASIC partitions'. With event ticks (as
``spillway run`` starts the agents) every second must still close with the readings of every
partition, whether the lateness is short (a lagging partition is not a stalled one) or long.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.deadletter import DeadLetter
from schemas.events import SitePower
from streams.agents.sites import publish_site
from streams.settings import Settings
from tests.agents.helpers import Collector, Second, frames, produce, small_site, worker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SECONDS = 300


@pytest.mark.parametrize("lateness", [2, 60], ids=["spillway-run-default", "long-lateness"])
def test_a_backlog_closes_every_second_with_all_its_readings(
    fresh_namespace_settings: Settings, tmp_path: Path, lateness: int
) -> None:
    settings = fresh_namespace_settings
    site = small_site()
    publish_site(settings, site)
    t0 = int(time.time()) - 3600
    expected: dict[int, int] = {}
    burst: list[tuple[str, bytes, bytes]] = []
    for i in range(SECONDS):
        out = frames(site, Second(ts_s=t0 + i + 0.5), i, nodes_per_rack=1, miners_per_rack=10)
        burst.extend((t, k, v) for t, k, v, _ in out)
        expected[t0 + i] = sum(n for *_, n in out)
    col = Collector(settings, {"site.power.v1": SitePower, "deadletter.v1": DeadLetter})
    log = tmp_path / "worker.log"
    args = ("--site", site.site_id, "--tick", "event", "--lateness", str(lateness))
    last_closed = t0 + SECONDS - 1 - lateness - 1
    try:
        with worker(
            settings, *args, "--loglevel", "info", "--data-dir", str(tmp_path / "db"), log=log
        ) as w:
            produce(settings, burst)
            col.until(
                lambda g: any(p.ts_s >= last_closed for p in g["site.power.v1"]),
                120,
                f"SitePower {last_closed}",
            )
            got = col.settle(2.0)
            assert w.poll() is None
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker ---\n{log.read_text()[-3000:]}") from None
    finally:
        col.close()
    powers = got["site.power.v1"]
    assert got["deadletter.v1"] == []
    # Every second up to the lateness bound, in order; the last ones close too once complete.
    closed = [p.ts_s for p in powers]
    assert closed == list(range(t0, t0 + len(closed)))
    assert last_closed <= closed[-1] < t0 + SECONDS
    short = [(p.ts_s - t0, p.readings) for p in powers if p.readings != expected[p.ts_s]]
    assert short == [], f"{len(short)} of {len(powers)} seconds short: {short[:10]}"
    assert sum(p.late_readings for p in powers) == 0
