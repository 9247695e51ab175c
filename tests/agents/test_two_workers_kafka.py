"""Two worker processes in one consumer group share the partitions: each telemetry
partition is processed by exactly one of them, and the 1-second site power is complete."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from schemas.deadletter import DeadLetter
from schemas.events import SitePower, SitePowerPartial
from streams.agents.sites import publish_site
from streams.settings import Settings
from tests.agents.helpers import (
    Collector,
    Second,
    frames,
    produce,
    small_site,
    wait_for_members,
    worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SECONDS = 20


def test_two_workers_share_the_partitions(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_namespace_settings
    site = small_site()
    publish_site(settings, site)
    group = f"{settings.topic_namespace}.spillway-agents"
    names = {
        b: f"{settings.topic_namespace}.{b}"
        for b in ("telemetry.meter.v1", "telemetry.gpu.v1", "telemetry.asic.v1")
    }
    col = Collector(
        settings,
        {
            "site.power.partial.v1": SitePowerPartial,
            "site.power.v1": SitePower,
            "deadletter.v1": DeadLetter,
        },
    )
    common = ("--site", site.site_id, "--tick", "off", "--lateness", "10", "--loglevel", "info")
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    t0 = float(int(time.time()) - 60)
    expected: dict[int, int] = {}
    try:
        with (
            worker(settings, *common, log=logs[0]) as w1,
            worker(settings, *common, log=logs[1]) as w2,
        ):
            members = wait_for_members(settings, group, 2, 90)
            time.sleep(3)  # let the second rebalance settle (both recover their tables)
            members = wait_for_members(settings, group, 2, 30)
            for i in range(SECONDS):
                out = frames(site, Second(ts_s=t0 + i), i, nodes_per_rack=1, miners_per_rack=10)
                produce(settings, [(t, k, v) for t, k, v, _ in out])
                expected[int(t0) + i] = sum(n for *_, n in out)
                time.sleep(0.1)
            last_closed = int(t0) + SECONDS - 1 - 10 - 1
            col.until(
                lambda g: any(p.ts_s == last_closed for p in g["site.power.v1"]),
                60,
                f"SitePower {last_closed}",
            )
            got = col.settle(2.0)
            assert w1.poll() is None and w2.poll() is None
    except AssertionError as exc:
        tails = "\n".join(f"--- {p.name} ---\n{p.read_text()[-2000:]}" for p in logs)
        raise AssertionError(f"{exc}\n{tails}") from None
    finally:
        col.close()

    # The group split the telemetry partitions between the two workers, without overlap.
    telemetry = [{tp for tp in m if tp[0] in names.values()} for m in members]
    assert all(telemetry) and not telemetry[0] & telemetry[1]
    all_tps = {
        (names[b], p)
        for b, n in (("telemetry.meter.v1", 3), ("telemetry.gpu.v1", 6), ("telemetry.asic.v1", 6))
        for p in range(n)
    }
    assert telemetry[0] | telemetry[1] == all_tps

    # Each (second, source partition) was folded by one worker: its cumulative partials only
    # grow (a second worker folding it too would restart from zero).
    by_source: dict[tuple[int, str], list[int]] = defaultdict(list)
    for p in got["site.power.partial.v1"]:
        by_source[(p.ts_s, p.source_partition)].append(p.readings)
    assert all(r == sorted(set(r)) for r in by_source.values()), by_source
    sources = {s for _, s in by_source}
    assert len(sources) > 8  # many partitions carried data

    # Outputs complete: every closed second once, with every reading, none late.
    powers = got["site.power.v1"]
    closed = [p.ts_s for p in powers]
    assert closed == list(range(int(t0), int(t0) + len(closed)))
    assert last_closed <= closed[-1] < int(t0) + SECONDS
    assert all(p.readings == expected[p.ts_s] and p.late_readings == 0 for p in powers)
    assert got["deadletter.v1"] == []
    assert msgspec.structs.asdict(powers[0])["mining_w"] == pytest.approx(880_200.0)
