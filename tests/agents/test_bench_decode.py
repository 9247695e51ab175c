"""The decode benchmark runs and reports every way on the same frames (no broker needed)."""

from __future__ import annotations

from streams.agents.bench_decode import decode_costs


def test_decode_costs_reports_each_way_per_site_second() -> None:
    r = decode_costs(scale=0.01, seconds=2)
    assert set(r["ms_per_site_second"]) == {"contract", "plain_type", "untyped", "skip_values"}
    assert all(ms > 0 for ms in r["ms_per_site_second"].values())
    assert r["readings_per_site_second"] > 0
    assert r["frames_per_site_second"] > 0 and r["json_mb_per_site_second"] > 0
