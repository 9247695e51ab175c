"""The sink stores the GPU counters' steps per second and the publication puts them in
place of the AI samples they cover (no broker: batches go straight to the store)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from schemas.events import SitePower
from streams.marts.publish import publish
from streams.marts.store import add_missing_columns, open_store
from tests.marts.helpers import rt_price, site_config, site_second
from tests.marts.test_settlement_mart import DAY, Sink, _views
from tests.marts.test_settlement_mart import sink as sink  # noqa: F401 - the fixture

COUNTER_WH, SAMPLED_WH = 150_000.0, 125_000.0
"""Every 10 s a step: the GPUs counted 150 kWh where the held samples said 125 kWh."""


def _second(ts: int) -> SitePower:
    s = site_second("s", ts)
    if (ts - DAY) % 10 == 5:  # steps end at :05, :15, ...: all within the interval
        return msgspec.structs.replace(s, ai_counter_wh=COUNTER_WH,
                                       ai_counter_sampled_wh=SAMPLED_WH)
    return s


def test_the_interval_takes_gpu_energy_from_the_counters(sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    seconds = [("site.power.v1", _second(ts)) for ts in range(DAY - 60, DAY + 901)]
    sink.write([*seconds, ("grid.prices.v1", rt_price(DAY, 42.5))], configs=[site_config("s")])
    publish(sink.con, marts, now_s=DAY + 2000)
    with _views(marts) as v:
        row = v.execute(
            "SELECT ai_mwh, ai_counter_mwh, ai_counter_sampled_mwh, overhead_mwh, total_mwh, "
            f"poi_mwh FROM interval_energy WHERE interval_start_s = {DAY}"
        ).fetchone()
    assert row is not None
    ai, counter, sampled, overhead, total, poi = (float(x) for x in row)
    assert counter == pytest.approx(90 * COUNTER_WH / 1e6, rel=1e-9)
    assert sampled == pytest.approx(90 * SAMPLED_WH / 1e6, rel=1e-9)
    samples_ai = 900 * site_second("s", DAY).ai_w / 3.6e9
    assert ai == pytest.approx(samples_ai + counter - sampled, rel=1e-9)
    # The POI read every second: the total stays the POI's, the overhead takes the change.
    assert total == pytest.approx(poi, rel=1e-9)
    assert overhead == pytest.approx(poi - ai - 900 * site_second("s", DAY).mining_w / 3.6e9,
                                     rel=1e-9)


def test_an_existing_store_gains_the_counter_columns(tmp_path: Path) -> None:
    con = open_store(tmp_path / "sink.duckdb")
    con.execute("ALTER TABLE site_power DROP COLUMN ai_counter_wh")
    con.execute("ALTER TABLE site_power DROP COLUMN ai_counter_sampled_wh")
    added = add_missing_columns(con)
    con.close()
    assert added == ["site_power.ai_counter_wh", "site_power.ai_counter_sampled_wh"]
