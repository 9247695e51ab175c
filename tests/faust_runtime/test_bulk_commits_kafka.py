"""Stage 1 takes telemetry past faust's per-message path (``streams.faust_runtime.bulk``), yet the
group's committed offsets still follow what it has processed: a worker that restarts, or
takes over a partition, resumes where stage 1 left off instead of fetching every retained
frame again only to drop it as a re-delivery."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.events import SitePower
from streams.agents.sites import publish_site
from streams.bench.limit import end_offsets
from streams.faust_runtime.readback import start_offsets
from streams.settings import Settings
from tests.agents.helpers import Collector, Second, frames, produce, small_site, worker

pytestmark = pytest.mark.kafka

SECONDS = 30


def test_the_group_commits_every_telemetry_frame_stage_1_has_processed(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_namespace_settings
    site = small_site()
    publish_site(settings, site)
    t0 = int(time.time()) - 600
    burst: list[tuple[str, bytes, bytes]] = []
    for i in range(SECONDS):
        out = frames(site, Second(ts_s=t0 + i + 0.5), i, nodes_per_rack=1, miners_per_rack=10)
        burst.extend((t, k, v) for t, k, v, _ in out)
    col = Collector(settings, {"site.power.v1": SitePower})
    log = tmp_path / "worker.log"
    group = f"{settings.topic_namespace}.spillway-agents"
    args = ("--site", site.site_id, "--tick", "event", "--data-dir", str(tmp_path / "db"))
    try:
        with worker(settings, *args, log=log) as w:
            produce(settings, burst)
            col.until(
                lambda g: any(p.ts_s >= t0 + SECONDS - 4 for p in g["site.power.v1"]),
                120,
                "SitePower of the burst's last seconds",
            )
            ends = end_offsets(settings)
            # faust commits on its interval (2.8 s): give it a few.
            deadline = time.monotonic() + 30
            committed = start_offsets(settings, group, list(ends))
            while committed != ends and time.monotonic() < deadline:
                time.sleep(1)
                committed = start_offsets(settings, group, list(ends))
            assert w.poll() is None, log.read_text()[-3000:]
    finally:
        col.close()
    assert sum(ends.values()) == len(burst)
    # start_offsets gives the committed offset, else the earliest (0 here): equal to the
    # end of every partition that has frames only once all of them are committed.
    assert committed == ends, f"committed {committed} != ends {ends}"
