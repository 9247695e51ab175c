"""The sink stores the AI and mining sub-meters' registers and the publication takes the
interval's AI and mining energy from them (no broker: batches go straight to the store)."""

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

AI_WH_PER_S, MINING_WH_PER_S = 25_000.0, 10_000.0
"""90 MW and 36 MW by the registers, where the samples say 100 MW and 50 MW."""


def _second(ts: int) -> SitePower:
    """Stage 2's second with the sub-meters' registers counting from a minute before DAY."""
    n = ts - (DAY - 60)
    return msgspec.structs.replace(
        site_second("s", ts),
        ai_energy_wh=1e6 + n * AI_WH_PER_S,
        mining_energy_wh=2e6 + n * MINING_WH_PER_S,
    )


def test_the_interval_takes_ai_and_mining_from_their_registers(
    sink: Sink, tmp_path: Path
) -> None:
    marts = tmp_path / "marts"
    seconds = [("site.power.v1", _second(ts)) for ts in range(DAY - 60, DAY + 901)]
    sink.write([*seconds, ("grid.prices.v1", rt_price(DAY, 42.5))], configs=[site_config("s")])
    publish(sink.con, marts, now_s=DAY + 2000)
    with _views(marts) as v:
        row = v.execute(
            "SELECT ai_source, ai_register_s, ai_mwh, mining_source, mining_register_s, "
            "mining_mwh, overhead_mwh, total_mwh, poi_mwh FROM interval_energy "
            f"WHERE interval_start_s = {DAY}"
        ).fetchone()
    assert row is not None
    assert row[:2] == ("register", 900) and row[3:5] == ("register", 900)
    ai, mining, overhead, total, poi = (float(x) for x in (row[2], *row[5:]))
    assert ai == pytest.approx(900 * AI_WH_PER_S / 1e6, rel=1e-9)
    assert mining == pytest.approx(900 * MINING_WH_PER_S / 1e6, rel=1e-9)
    # No POI register: the POI samples are the total, the overhead what AI and mining leave.
    assert total == pytest.approx(poi, rel=1e-9) and total == pytest.approx(40.0, rel=1e-9)
    assert overhead == pytest.approx(poi - ai - mining, rel=1e-9)


def test_an_existing_store_gains_the_register_columns(tmp_path: Path) -> None:
    con = open_store(tmp_path / "sink.duckdb")
    con.execute("ALTER TABLE site_power DROP COLUMN ai_energy_wh")
    con.execute("ALTER TABLE site_power DROP COLUMN mining_energy_wh")
    added = add_missing_columns(con)
    con.close()
    assert added == ["site_power.ai_energy_wh", "site_power.mining_energy_wh"]
