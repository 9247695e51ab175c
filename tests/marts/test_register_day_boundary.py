"""The publication reads the POI register across midnight: the day's first interval takes
all its 900 s from the register, opened by the reading of the day's last second before it
(no broker: batches go straight to the store)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from streams.marts.publish import publish
from tests.marts.helpers import rt_price, site_config, site_second
from tests.marts.test_settlement_mart import DAY, Sink, _views
from tests.marts.test_settlement_mart import sink as sink  # noqa: F401 - the fixture

WH_PER_S = 50.0
"""The register's step a second: 180 kW, far from the 160 MW samples, so which one was
used shows."""


def test_the_first_interval_of_a_day_is_opened_by_the_reading_before_midnight(
    sink: Sink, tmp_path: Path
) -> None:
    marts = tmp_path / "marts"
    start = DAY - 60
    items: list[tuple[str, msgspec.Struct]] = [
        (
            "site.power.v1",
            msgspec.structs.replace(
                site_second("s", ts), poi_energy_wh=1e6 + (ts - start) * WH_PER_S
            ),
        )
        for ts in range(start, DAY + 901)
    ]
    items += [("grid.prices.v1", rt_price(DAY, 42.5))]
    sink.write(items, configs=[site_config("s")])
    publish(sink.con, marts, now_s=DAY + 2000)
    with _views(marts) as v:
        row = v.execute(
            "SELECT poi_source, poi_register_s, poi_mwh FROM interval_energy "
            f"WHERE interval_start_s = {DAY}"
        ).fetchone()
    assert row is not None
    assert (row[0], row[1]) == ("register", 900)
    assert row[2] == pytest.approx(900 * WH_PER_S / 1e6, rel=1e-12)
