"""Two worker processes in one consumer group share the partitions: each telemetry
partition is processed by exactly one of them, and the 1-second site power is complete."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

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
    log_tails_on_failure,
    produce,
    small_site,
    wait_for_members,
    worker,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SECONDS = 20


def collector(settings: Settings) -> Collector:
    return Collector(
        settings,
        {
            "site.power.partial.v1": SitePowerPartial,
            "site.power.v1": SitePower,
            "deadletter.v1": DeadLetter,
        },
    )


def until_closed(col: Collector, last_closed: int, timeout_s: float) -> dict[str, list[Any]]:
    """Everything collected once the SitePower of ``last_closed`` is out and all is quiet."""
    col.until(
        lambda g: any(p.ts_s == last_closed for p in g["site.power.v1"]),
        timeout_s,
        f"SitePower {last_closed}",
    )
    return col.settle(2.0)


def worker_args(site_id: str) -> tuple[str, ...]:
    return ("--site", site_id, "--tick", "off", "--lateness", "10", "--loglevel", "info")


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
    col = collector(settings)
    common = worker_args(site.site_id)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    t0 = float(int(time.time()) - 60)
    expected: dict[int, int] = {}
    try:
        with (
            log_tails_on_failure(logs),
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
            got = until_closed(col, last_closed, 60)
            assert w1.poll() is None and w2.poll() is None
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


def test_no_reading_lost_when_frames_arrive_during_the_rebalance(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    """Frames arrive while the group is still settling: the first worker took every
    partition, the second joins, and a burst lands as both recover their tables. No
    reading is lost: each is in its SitePower or counted late (a worker slower to start
    than the startup hold), and a partition late at the start catches up. The test above
    lets the group settle for three seconds first and found neither of these: a consumer
    path that ran faust's message callback inline lost whole fetches; a partition first
    heard of after its seconds had closed never held a second open, so stayed late."""
    settings = fresh_namespace_settings
    site = small_site()
    publish_site(settings, site)
    group = f"{settings.topic_namespace}.spillway-agents"
    col = collector(settings)
    common = worker_args(site.site_id)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    seconds, burst = 40, 12
    t0 = float(int(time.time()) - 60)
    expected: dict[int, int] = {}
    batches: list[list[tuple[str, bytes, bytes]]] = []
    for i in range(seconds):
        out = frames(site, Second(ts_s=t0 + i), i, nodes_per_rack=1, miners_per_rack=10)
        batches.append([(t, k, v) for t, k, v, _ in out])
        expected[int(t0) + i] = sum(n for *_, n in out)
    try:
        with log_tails_on_failure(logs):
            with (
                worker(settings, *common, log=logs[0]) as w1,
                worker(settings, *common, log=logs[1]) as w2,
            ):
                wait_for_members(settings, group, 2, 90)
                produce(settings, [m for batch in batches[:burst] for m in batch])
                for batch in batches[burst:]:
                    produce(settings, batch)
                    time.sleep(0.1)
                last_closed = int(t0) + seconds - 1 - 10 - 1
                got = until_closed(col, last_closed, 90)
                assert w1.poll() is None and w2.poll() is None
            check_complete(got, expected, int(t0))
    finally:
        col.close()


def check_complete(got: dict[str, list[Any]], expected: dict[int, int], first: int) -> None:
    """Every second from ``first`` closed once, in order; every reading counted, on time or
    late; the last ten seconds complete (a partition late at the start has caught up)."""
    powers = got["site.power.v1"]
    closed = [p.ts_s for p in powers]
    assert closed == list(range(first, first + len(closed)))
    settled = closed[-10]
    counted = sum(p.readings + p.late_readings for p in powers)
    short = {
        p.ts_s: expected[p.ts_s] - p.readings for p in powers if p.readings != expected[p.ts_s]
    }
    if counted != sum(expected[s] for s in closed) or any(s >= settled for s in short):
        seen: dict[str, set[int]] = defaultdict(set)
        for part in got["site.power.partial.v1"]:
            seen[part.source_partition].add(part.ts_s)
        gaps = {s: len(set(closed) - ts) for s, ts in sorted(seen.items()) if set(closed) - ts}
        raise AssertionError(
            f"readings short in SitePower, by second: {short}; "
            f"late readings reported: {sum(p.late_readings for p in powers)}; "
            f"seconds without a partial, by source partition: {gaps}"
        )
    assert got["deadletter.v1"] == []
