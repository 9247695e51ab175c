"""A partition whose first fetch after the assignment is dropped (never delivered) is found
by the tail watch and read again; nothing processed it before, so only the assignment puts
it in the watch (``streams.faust_runtime.tail_watch``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.events import SitePowerPartial
from streams.agents.app import PARTIAL_TOPIC
from streams.agents.sites import publish_site
from streams.bench.limit import end_offsets
from streams.settings import Settings
from tests.agents.helpers import Collector, Second, frames, produce, small_site, worker

pytestmark = pytest.mark.kafka

METER = "telemetry.meter.v1"
SECONDS = 5


def test_a_partition_whose_first_fetch_is_dropped_is_sought_back_and_processed(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_namespace_settings
    site = small_site()
    publish_site(settings, site)
    t0 = int(time.time()) - 30
    burst: list[tuple[str, bytes, bytes]] = []
    meter_readings: dict[int, int] = {}
    for i in range(SECONDS):
        out = frames(site, Second(ts_s=t0 + i + 0.5), i, nodes_per_rack=1, miners_per_rack=10)
        burst.extend((t, k, v) for t, k, v, _ in out)
        meter_readings[t0 + i] = sum(n for t, *_, n in out if t == METER)
    produce(settings, burst)
    # The site's one meter gateway: its frames all land on one partition.
    [partition] = [p for (_t, p), high in end_offsets(settings, (METER,)).items() if high > 0]
    source = f"{METER}:{partition}"
    col = Collector(settings, {PARTIAL_TOPIC: SitePowerPartial})
    log = tmp_path / "worker.log"

    def meter_partials() -> dict[int, int]:
        got: dict[int, int] = {}
        for p in col.got[PARTIAL_TOPIC]:
            if p.source_partition == source:  # cumulative: the last one holds the second
                got[p.ts_s] = max(got.get(p.ts_s, 0), p.readings)
        return got

    args = ("--site", site.site_id, "--loglevel", "info", "--data-dir", str(tmp_path / "db"))
    try:
        with worker(
            settings,
            METER,
            str(partition),
            *args,
            log=log,
            module="tests.faust_runtime.drop_first_fetch",
        ) as w:
            col.until(lambda _: meter_partials() == meter_readings, 90, f"partials of {source}")
            assert w.poll() is None
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker ---\n{log.read_text()[-3000:]}") from None
    finally:
        col.close()
    text = log.read_text()
    assert "test: dropped" in text  # the fault did happen
    assert "were not delivered" in text and "seeking back to 0" in text
