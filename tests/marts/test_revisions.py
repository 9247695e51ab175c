"""diff_published: which published rows a rebuild restates, and how the record reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from streams.marts.revisions import diff_published
from streams.marts.tables import REVISIONS

T0 = 1_767_225_600


def _energy(rows: list[tuple[str, int, float, float | None, bool]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"site_id": pl.String, "interval_start_s": pl.Int64,
                                      "total_mwh": pl.Float64, "poi_mwh": pl.Float64,
                                      "reconciled": pl.Boolean}, orient="row")


BASE = [("a", T0, 40.0, 40.0, True), ("a", T0 + 900, 40.0, None, False)]


@pytest.mark.parametrize(("new", "want"), [
    pytest.param(BASE, [], id="unchanged"),
    pytest.param(list(reversed(BASE)), [], id="row-order-does-not-matter"),
    pytest.param([("a", T0, 40.0 * (1 + 1e-15), 40.0, True), BASE[1]], [],
                 id="float-reassociation-is-not-a-revision"),
    pytest.param([*BASE, ("a", T0 + 1800, 1.0, 1.0, True)], [], id="new-key-is-not-a-revision"),
    pytest.param([("a", T0, 44.5, 40.0, True), BASE[1]],
                 [("a", T0, ["total_mwh"], ["40.0"], ["44.5"])], id="one-column"),
    pytest.param([BASE[0], ("a", T0 + 900, 41.0, 41.0, True)],
                 [("a", T0 + 900, ["total_mwh", "poi_mwh", "reconciled"],
                   ["40.0", None, "false"], ["41.0", "41.0", "true"])],
                 id="null-to-value-and-bool"),
    pytest.param([BASE[1]],
                 [("a", T0, ["total_mwh", "poi_mwh", "reconciled"],
                   ["40.0", "40.0", "true"], [None, None, None])], id="withdrawn-row"),
])
def test_diff_of_interval_rows(new: list[Any], want: list[Any]) -> None:
    got = diff_published("interval_energy", _energy(BASE), _energy(new),
                         generation_before=3, generation_after=7, revised_at_s=99.0)
    assert got.schema == pl.Schema(REVISIONS.schema())
    assert got.select("site_id", "key_start_s", "changed_columns", "old_values",
                      "new_values").rows() == want
    assert set(got["generation_before"]) <= {3} and set(got["generation_after"]) <= {7}
    assert set(got["mart"]) <= {"interval_energy"} and set(got["key_col"]) <= {
        "interval_start_s"}


@pytest.mark.parametrize(("old", "new", "changed"), [
    (Decimal("-1103.25"), Decimal("-1103.25"), False),
    (Decimal("-1103.25"), Decimal("-1103.26"), True),  # one cent is a revision
    (Decimal("0.00"), Decimal("0.01"), True),
])
def test_money_compares_exactly(old: Decimal, new: Decimal, changed: bool) -> None:
    def frame(v: Decimal) -> pl.DataFrame:
        return pl.DataFrame({"site_id": ["a"], "interval_start_s": [T0], "net_usd": [v]},
                            schema={"site_id": pl.String, "interval_start_s": pl.Int64,
                                    "net_usd": pl.Decimal(38, 2)})

    got = diff_published("settlement", frame(old), frame(new), generation_before=1,
                         generation_after=2, revised_at_s=0.0)
    assert got.height == int(changed)
    if changed:
        assert got.row(0, named=True)["old_values"] == [str(old)]
        assert got.row(0, named=True)["new_values"] == [str(new)]


def test_carbon_key_is_the_hour() -> None:
    old = pl.DataFrame({"site_id": ["a"], "hour_start_s": [T0], "location_g": [1.0]})
    new = old.with_columns(pl.lit(2.0).alias("location_g"))
    got = diff_published("carbon_hourly", old, new, generation_before=1, generation_after=2,
                         revised_at_s=0.0)
    assert got.select("key_col", "key_start_s").rows() == [("hour_start_s", T0)]


def test_nothing_published_before_means_no_revision() -> None:
    got = diff_published("interval_energy", _energy([]), _energy(BASE), generation_before=0,
                         generation_after=1, revised_at_s=0.0)
    assert got.height == 0
