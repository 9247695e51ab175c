"""Late readings restate, end to end on the real broker: a site whose miner scrapes of five
minutes reach Kafka nearly twelve minutes late gives the same marts as the same site on time, and
the publication records the revision (``mart_revisions``).

Two sites with one fleet (``tests.replay.real_fleet``, real miner API captures at 5 s, a
revenue meter every second, the real LZ_WEST prices of 2025-07-01); one agents worker; the
sink publishes once before the late scrapes are sent (their seconds closed without them)
and once after (restated by ``site.power.restated.v1``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from schemas.events import SitePower
from schemas.restatement import RESTATED_TOPIC, SitePowerRestatement
from streams.agents.sites import publish_site
from streams.marts.publish import VIEWS_FILE, publish
from streams.marts.sink import run_sink
from streams.replay.records import Record, merge
from streams.replay.runner import send
from streams.settings import Settings
from tests.agents.helpers import Collector, log_tails_on_failure, worker
from tests.replay.real_fleet import (
    asic_records,
    fleet_site,
    fleet_truth,
    poi_records,
    real_models,
)
from tests.replay.test_cadence_kafka import START, TEN_YEARS_S, mining_rows, price_records

pytestmark = pytest.mark.kafka

INTERVALS = 2
LATE_FROM, LATE_TO = START + 300, START + 600
"""The scrapes stamped in these seconds are sent ``DELAY_S`` late."""
DELAY_S = 700.0
FIRST_PUBLISH = START + 960
"""Published after the first interval has closed and before the late scrapes are sent
(they go out from START + 1000)."""


def delayed(records: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """(on time, late): the late ones keep their frames' stamps, sent ``DELAY_S`` later."""
    on_time: list[Record] = []
    late: list[Record] = []
    for r in records:
        if LATE_FROM <= r.ts_s < LATE_TO:
            late.append(Record(r.ts_s + DELAY_S, r.topic, r.key, r.value))
        else:
            on_time.append(r)
    return on_time, late


def before(records: Iterator[Record], end_s: float) -> tuple[list[Record], list[Record]]:
    head: list[Record] = []
    tail: list[Record] = []
    for r in records:
        (head if r.ts_s < end_s else tail).append(r)
    return head, tail


def sink_once(settings: Settings, marts: Path, group: str) -> None:
    run_sink(
        settings,
        threading.Event(),
        db_path=marts / "sink.duckdb",
        group_id=group,
        once=True,
        idle_s=1.0,
        publish_every_s=None,
        publisher=lambda con: publish(con, marts),
    )


def test_late_scrapes_restate_their_seconds_and_the_marts_equal_the_on_time_site(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_namespace_settings.model_copy(
        update={"max_age_s": TEN_YEARS_S, "restatement_horizon_s": TEN_YEARS_S}
    )
    measured_end = START + INTERVALS * 900
    end = measured_end + 300
    models = real_models()
    tag = uuid.uuid4().hex[:6]
    ontime, late = (
        fleet_site(f"{name}-{tag}", models, asic_staleness_s=15.0, start_s=START)
        for name in ("ontime", "late")
    )
    for site in (ontime, late):
        publish_site(settings, site)
    late_kept, late_sent_late = delayed(asic_records(late.site_id, models, 5, START, end))
    sources: dict[str, Any] = {
        "prices": price_records(end + 900),
        "asic on time": asic_records(ontime.site_id, models, 5, START, end),
        "poi on time": poi_records(ontime.site_id, models, START, end),
        "asic late, kept": late_kept,
        "asic late, delayed": late_sent_late,
        "poi late": poi_records(late.site_id, models, START, end),
    }
    first, rest = before(merge(sources), FIRST_PUBLISH + 10)

    col = Collector(settings, {"site.power.v1": SitePower, RESTATED_TOPIC: SitePowerRestatement})
    log = tmp_path / "agents.log"
    args = [
        "--site",
        ontime.site_id,
        "--site",
        late.site_id,
        "--tick",
        "event",
        "--max-open",
        "3600",
    ]
    args += ["--data-dir", str(tmp_path / "rocks")]
    args += ["--restate-memory", "3600"]  # the replay runs event time far ahead of wall time
    marts, group = tmp_path / "marts", f"g-{uuid.uuid4().hex[:8]}"

    def powers_past(ts: float) -> Any:
        def done(got: dict[str, list[Any]]) -> bool:
            newest: dict[str, int] = {}
            for sp in got["site.power.v1"]:
                newest[sp.site_id] = max(newest.get(sp.site_id, 0), sp.ts_s)
            return all(newest.get(s.site_id, 0) >= ts for s in (ontime, late))

        return done

    try:
        with log_tails_on_failure([log]), worker(settings, *args, log=log):
            send(settings, first, label="late, part 1")
            col.until(powers_past(FIRST_PUBLISH), 150, f"SitePower past {FIRST_PUBLISH}")
            sink_once(settings, marts, group)  # the late site's seconds, without the scrapes
            send(settings, rest, label="late, part 2")
            col.until(powers_past(measured_end), 150, f"SitePower past {measured_end}")
    finally:
        col.close()
    sink_once(settings, marts, group)

    restated = col.got[RESTATED_TOPIC]
    assert restated, "no restatement was sent"
    late_restated = [r for r in restated if r.site_id == late.site_id]
    print(
        f"restated seconds: late site {len(late_restated)}, on-time site "
        f"{len(restated) - len(late_restated)} (partitions behind one another)"
    )
    assert {r.ts_s for r in late_restated} >= set(range(LATE_FROM + 15, LATE_TO))
    assert sum(r.late_readings for r in late_restated) > 0
    with duckdb.connect(str(marts / VIEWS_FILE), read_only=True) as v:
        rows = mining_rows(v, measured_end)
        flagged = v.execute(
            "SELECT count(*) FROM site_power WHERE site_id = ? "
            "AND list_contains(flags, 'restated')",
            [late.site_id],
        ).fetchone()
        revised = v.execute(
            "SELECT DISTINCT key_start_s FROM mart_revisions WHERE mart = 'interval_energy' "
            "AND site_id = ?",
            [late.site_id],
        ).fetchall()
    by_site = {(s, iv): (mwh, ph, usd) for s, iv, mwh, ph, usd in rows}
    mining_w, hashrate_ths = fleet_truth(models)
    truth_mwh, truth_ph_days = mining_w * 900 / 3.6e9, hashrate_ths / 1000 * 900 / 86_400
    for iv in range(START, measured_end, 900):
        for site in (ontime, late):
            mwh, ph, _ = by_site[(site.site_id, iv)]
            assert (mwh, ph) == (
                pytest.approx(truth_mwh, rel=1e-9),
                pytest.approx(truth_ph_days, rel=1e-9),
            ), (site.site_id, iv)
        got, want = by_site.get((late.site_id, iv)), by_site.get((ontime.site_id, iv))
        assert got is not None and want is not None, rows
        assert got[0] == pytest.approx(want[0], rel=1e-9), (iv, got, want)
        assert got[1] == pytest.approx(want[1], rel=1e-9), (iv, got, want)
        assert got[2] == want[2], (iv, got, want)
    assert flagged is not None and flagged[0] >= LATE_TO - LATE_FROM - 15
    assert (START,) in revised
