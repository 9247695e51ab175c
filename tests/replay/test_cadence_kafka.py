"""Readings at any cadence, end to end on the real broker: the real miner API captures
replayed at 1, 5 and 60 s polling, through the agents and the sink into the marts, give the
same mining energy, hashrate and revenue per settlement interval.

One namespace, three sites (one per polling period) with the same fleet
(``tests.replay.real_fleet``), a revenue meter every second, and the day's real LZ_WEST RT
prices; one agents worker (event-time ticks) and the sink once at the end. The bound of
docs/cadence.md for a constant load is zero away from the stream's ends: the window measured
starts at the first poll and ends five minutes before the input does.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from schemas.events import SitePower
from streams.agents.sites import publish_site
from streams.marts.publish import VIEWS_FILE, publish
from streams.marts.sink import run_sink
from streams.replay import scenario
from streams.replay.records import Record, merge
from streams.replay.runner import send
from streams.settings import Settings
from tests.agents.helpers import Collector, log_tails_on_failure, worker
from tests.replay.real_fleet import asic_records, fleet_site, fleet_truth, poi_records, real_models

pytestmark = pytest.mark.kafka

START = 1_751_346_000
"""2025-07-01T05:00:00Z, the start of the ERCOT market day 2025-07-01 (CDT)."""
INTERVALS = 4
TAIL_S = 300
"""Input past the last interval measured: the agents close a second once the sources have
moved past it, so the input's last seconds stay open."""
PERIODS = (1, 5, 60)
PRICES = Path(__file__).parents[2] / "infra" / "scenarios" / "h100-ercot-day.toml"
TEN_YEARS_S = 10 * 365 * 86_400.0


def price_records(end_s: float) -> list[Record]:
    """The real RT prices of the window (ERCOT 2025-07-01, LZ_WEST), as the replay sends them."""
    sc = scenario.load(PRICES)
    return [
        r
        for name, recs in scenario.sources(sc).items()
        if name.startswith("prices")
        for r in recs
        if r.ts_s < end_s
    ]


def mining_rows(v: duckdb.DuckDBPyConnection, end_s: int) -> list[Any]:
    """(site, interval, mining MWh, PH-days, mining revenue) of every interval before end."""
    return v.execute(
        "SELECT e.site_id, e.interval_start_s, e.mining_mwh, e.hashrate_ph_days, "
        "s.mining_revenue_usd FROM interval_energy e JOIN settlement s "
        "USING (site_id, interval_start_s) WHERE e.interval_start_s < ? ORDER BY ALL",
        [end_s],
    ).fetchall()


def test_real_captures_at_1_5_and_60_s_give_the_same_marts(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    # A replay of 2025: by the wall clock its frames and restatements are a year old.
    settings = fresh_namespace_settings.model_copy(
        update={"max_age_s": TEN_YEARS_S, "restatement_horizon_s": TEN_YEARS_S}
    )
    measured_end = START + INTERVALS * 900
    end = measured_end + TAIL_S
    models = real_models()
    tag = uuid.uuid4().hex[:6]
    sites = {
        p: fleet_site(f"cad{p}-{tag}", models, asic_staleness_s=3.0 * p, start_s=START)
        for p in PERIODS
    }
    for site in sites.values():
        publish_site(settings, site)
    # Prices go out when ERCOT posts them, after their interval: the last one measured comes
    # after the telemetry ends.
    sources: dict[str, Any] = {"prices": price_records(end + 900)}
    for p, site in sites.items():
        sources[f"asic {p}s"] = asic_records(site.site_id, models, p, START, end)
        sources[f"poi {p}s"] = poi_records(site.site_id, models, START, end)

    col = Collector(settings, {"site.power.v1": SitePower})
    log = tmp_path / "agents.log"
    args = [a for s in sites.values() for a in ("--site", s.site_id)]
    args += ["--tick", "event", "--max-open", "3600", "--data-dir", str(tmp_path / "rocks")]
    # Sent at full speed, a partition the worker is slow to fetch falls hours of event time
    # behind the others; the restater remembers the whole replay so its readings restate.
    args += ["--restate-memory", str(end - START)]
    try:
        with log_tails_on_failure([log]), worker(settings, *args, log=log):
            send(settings, merge(sources), label="cadence")

            def measured(got: dict[str, list[SitePower]]) -> bool:
                newest: dict[str, int] = {}
                for sp in got["site.power.v1"]:
                    newest[sp.site_id] = max(newest.get(sp.site_id, 0), sp.ts_s)
                return all(newest.get(s.site_id, 0) >= measured_end for s in sites.values())

            col.until(measured, 150, f"SitePower past {measured_end} for every site")
    finally:
        col.close()

    marts = tmp_path / "marts"
    run_sink(
        settings,
        threading.Event(),
        db_path=marts / "sink.duckdb",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        once=True,
        idle_s=1.0,
        publish_every_s=None,
        publisher=lambda con: publish(con, marts),
    )
    with duckdb.connect(str(marts / VIEWS_FILE), read_only=True) as v:
        rows = mining_rows(v, measured_end)
    by_site = {(site_id, iv): (mwh, ph, usd) for site_id, iv, mwh, ph, usd in rows}
    intervals = range(START, measured_end, 900)

    # 1 s against the truth, derived from the captures alone.
    mining_w, hashrate_ths = fleet_truth(models)
    truth_mwh, truth_ph_days = mining_w * 900 / 3.6e9, hashrate_ths / 1000 * 900 / 86_400
    one = sites[1].site_id
    assert [by_site.get((one, iv)) is not None for iv in intervals] == [True] * INTERVALS, rows
    for iv in intervals:
        mwh, ph, usd = by_site[(one, iv)]
        assert mwh == pytest.approx(truth_mwh, rel=1e-9)
        assert ph == pytest.approx(truth_ph_days, rel=1e-9)
        assert usd == (Decimal(truth_ph_days * 50)).quantize(Decimal("0.01"))

    # 5 s and 60 s against 1 s, interval by interval: no difference beyond float rounding
    # (energy) and none at all in the money, rounded to the cent.
    for p in (5, 60):
        sid = sites[p].site_id
        for iv in intervals:
            assert (sid, iv) in by_site, f"{p} s: interval {iv} not in the marts: {rows}"
            mwh, ph, usd = by_site[(sid, iv)]
            ref_mwh, ref_ph, ref_usd = by_site[(one, iv)]
            assert mwh == pytest.approx(ref_mwh, rel=1e-9), (p, iv)
            assert ph == pytest.approx(ref_ph, rel=1e-9), (p, iv)
            assert usd == ref_usd, (p, iv)
