"""Site config versions: stored rows, and the version in force for each interval."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from streams.marts.configs import (
    ConfigMessage,
    assign_versions,
    decimal_of,
    decode_config,
    site_config_frame,
)
from streams.marts.tables import BY_NAME
from tests.marts.helpers import site_config

T0 = 1_767_225_600


def _configs(versions: list[tuple[str, float, int, float]]) -> pl.DataFrame:
    """(site, updated_s, offset, hashprice) per message."""
    return site_config_frame([ConfigMessage(site_config(s, updated_s=u, hashprice=h), 0, o,
                                            1.0) for s, u, o, h in versions])


def test_rows_keep_the_config_and_its_position() -> None:
    frame = _configs([("a", 10.0, 4, 51.3)])
    assert frame.schema == pl.Schema(BY_NAME["site_configs"].schema())
    row = frame.row(0, named=True)
    assert (row["kafka_partition"], row["kafka_offset"]) == (0, 4)
    assert row["hashprice_usd_per_ph_day"] == Decimal("51.300000")
    assert decode_config(row["config_json"]) == site_config("a", updated_s=10.0, hashprice=51.3)


@pytest.mark.parametrize(("value", "want"), [
    (34.5, Decimal("34.5")), (0.1, Decimal("0.1")), (42.123456789, Decimal("42.123457")),
    (-250.0, Decimal("-250")),
])
def test_decimal_of_uses_the_shortest_text(value: float, want: Decimal) -> None:
    assert decimal_of(value) == want


@pytest.mark.parametrize(("versions", "want"), [
    pytest.param([("a", T0 + 900, 1, 1.0)], [T0 + 900] * 3,
                 id="before-the-first-version-the-first-applies"),
    pytest.param([("a", 0.0, 1, 1.0), ("a", T0 + 900, 2, 2.0)], [0.0, T0 + 900, T0 + 900],
                 id="a-version-applies-from-its-updated_s"),
    pytest.param([("a", 0.0, 1, 1.0), ("a", T0 + 901, 2, 2.0)], [0.0, 0.0, T0 + 901],
                 id="mid-interval-change-applies-from-the-next-interval"),
    pytest.param([("b", 0.0, 1, 1.0)], [], id="other-site-only"),
])
def test_version_in_force(versions: list[tuple[str, float, int, float]],
                          want: list[float]) -> None:
    energy = pl.DataFrame({"site_id": ["a"] * 3,
                           "interval_start_s": [T0, T0 + 900, T0 + 1800]})
    got = assign_versions(energy, _configs(versions))
    assert got["updated_s"].to_list() == want


def test_same_updated_s_highest_offset_wins() -> None:
    from streams.marts.configs import latest_versions

    frame = _configs([("a", 5.0, 7, 60.0), ("a", 5.0, 3, 40.0)])
    latest = latest_versions(frame)
    assert latest.height == 1 and latest["kafka_offset"].to_list() == [7]
    assert latest["hashprice_usd_per_ph_day"].to_list() == [Decimal("60")]
