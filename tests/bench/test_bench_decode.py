"""The decode benchmark runs and reports every way on the same frames (no broker needed)."""

from __future__ import annotations

import polars as pl

from schemas.registry import CONTRACTS
from streams.bench.decode import decode_costs, polars_schema


def test_decode_costs_reports_each_way_per_site_second() -> None:
    r = decode_costs(scale=0.01, seconds=2)
    assert set(r["ms_per_site_second"]) == {
        "contract",
        "plain_type",
        "untyped",
        "skip_values",
        "polars_ndjson",
    }
    assert all(ms > 0 for ms in r["ms_per_site_second"].values())
    assert r["readings_per_site_second"] > 0
    assert r["frames_per_site_second"] > 0 and r["json_mb_per_site_second"] > 0


def test_the_polars_schema_follows_the_contract_types() -> None:
    schema = polars_schema(CONTRACTS["telemetry.asic.v1"].type)
    assert schema["ts_s"] == pl.Float64()
    assert schema["miner_id"] == pl.List(pl.Utf8())
    assert schema["fan_rpm"] == pl.List(pl.Int64())  # list[int | None]: nullable ints
    assert schema["state"] == pl.List(pl.Utf8())  # a Literal of strings
    assert schema["power_limit_w"] == pl.List(pl.Float64())  # list[float | None] | None
