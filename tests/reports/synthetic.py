"""A small synthetic site, 2025-11-01..03 local (the 2025-11-02 fall-back day has 25 hours),
published the way ``streams.marts`` publishes: ``parquet/<table>/date=<UTC date>/`` files
plus a manifest. Powers are multiples of 60 W and hashrates multiples of 9 TH/s, so every
1-minute sample is a whole number of Wh and PH-days are exact at 9 places (see
tests/transforms/test_transforms_real_days.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from streams.marts.tables import BY_NAME
from transforms.carbon import build_carbon_hourly
from transforms.energy import interval_energy
from transforms.gates import ExpectationOutcome, GateResult
from transforms.settlement import build_settlement

CHICAGO = ZoneInfo("America/Chicago")
SITE = "site-a"
START_S = int(datetime(2025, 11, 1, tzinfo=CHICAGO).timestamp())
END_S = int(datetime(2025, 11, 4, tzinfo=CHICAGO).timestamp())
MINUTES = (END_S - START_S) // 60  # 73 hours: 3 local days, one of 25 hours
CONTRACT_W = 300_000_000
CONTRACT_PRICE = Decimal("45.50")
HASHPRICE = Decimal("50.000000")


def price_of(interval_start_s: int) -> Decimal:
    """A price per interval with cents, spiking every 37th interval."""
    k = (interval_start_s - START_S) // 900
    base = Decimal(20) + Decimal(k % 23) * Decimal("1.37")
    return base * 10 if k % 37 == 0 else base


def intensity_of(hour_start_s: int) -> float:
    return 300.0 + ((hour_start_s - START_S) // 3600 % 24) * 5.5


def site_power_rows() -> list[dict[str, Any]]:
    rows = []
    seed = 7
    for k in range(MINUTES):
        ts = START_S + 60 * k
        seed = (seed * 1103515245 + 12345) % 2**31
        ai = 200_000_000 + (seed % 500_000) * 60 + (k % 1440) * 30_000
        ai -= ai % 60
        overhead = (ai * 6 // 100) // 60 * 60
        surplus = CONTRACT_W - ai - overhead
        curtailed = price_of(ts - ts % 900) > 150
        mining = 0 if curtailed else max(0, min(surplus, 80_000_000))
        mining -= mining % 60
        ths = mining // 17 // 9 * 9
        total = ai + mining + overhead
        rows.append({"site_id": SITE, "ts_s": ts, "ai_w": float(ai), "mining_w": float(mining),
                     "overhead_w": float(overhead), "total_w": float(total),
                     "poi_meter_w": float(total), "contract_w": float(CONTRACT_W),
                     "surplus_w": float(surplus), "hashrate_ths": float(ths)})
    return rows


def marts_frames() -> dict[str, pl.DataFrame]:
    power = pl.DataFrame(site_power_rows())
    energy = interval_energy(power, max_gap_s=120, period_s=60)
    ivs = energy["interval_start_s"].to_list()
    prices = pl.DataFrame({"interval_start_s": ivs,
                           "price_usd_per_mwh": [price_of(s) for s in ivs]},
                          schema={"interval_start_s": pl.Int64,
                                  "price_usd_per_mwh": pl.Decimal(18, 6)})
    contracts = pl.DataFrame({"site_id": [SITE], "start_s": [START_S], "end_s": [END_S],
                              "mw": [300.0], "price_usd_per_mwh": [CONTRACT_PRICE]},
                             schema={"site_id": pl.String, "start_s": pl.Int64,
                                     "end_s": pl.Int64, "mw": pl.Float64,
                                     "price_usd_per_mwh": pl.Decimal(18, 6)})
    settlement = build_settlement(
        energy, prices, contracts,
        hashprice=pl.DataFrame({"start_s": [START_S], "hashprice_usd_per_ph_day": [HASHPRICE]}))
    hours = list(range(START_S, END_S, 3600))
    carbon = build_carbon_hourly(
        energy, pl.DataFrame({"hour_start_s": hours,
                              "ci": [intensity_of(h) for h in hours]}), intensity_col="ci",
        cfe=pl.DataFrame({"site_id": SITE, "hour_start_s": hours,
                          "cfe_mwh": [60.0 if (h // 3600) % 3 else 0.0 for h in hours]}))
    curtail = pl.DataFrame([{
        "event_id": "c1", "site_id": SITE, "kind": kind, "reasons": ["economic"],
        "reason_details": ["price"], "issued_at_s": float(START_S + 900 * 37),
        "target_mining_w": 0.0, "baseline_mining_w": 80e6, "deadline_s": START_S + 900 * 37 + 60.0,
        "achieved_at_s": START_S + 900 * 37 + 20.0, "response_time_s": 20.0,
        "deadline_met": True, "curtailed_wh": wh, "ended_at_s": end,
        "ts_s": ts} for kind, wh, end, ts in [
            ("issued", 0.0, None, START_S + 900 * 37.0),
            ("ended", 20e6, START_S + 900 * 38.0, START_S + 900 * 38.0)]])
    return {"site_power": power, "interval_energy": energy, "settlement": settlement,
            "carbon_hourly": carbon, "curtailment_events": curtail}


TIME = {"site_power": "ts_s", "interval_energy": "interval_start_s",
        "settlement": "interval_start_s", "carbon_hourly": "hour_start_s",
        "curtailment_events": "ts_s", "grid_prices": "interval_start_s"}


def publish(marts: Path, frames: dict[str, pl.DataFrame], generation: int = 1) -> None:
    """Write frames as ``parquet/<table>/date=<UTC date>/part-g<gen>.parquet`` + manifest."""
    tables: dict[str, dict[str, str]] = {}
    for name, frame in frames.items():
        day = (pl.from_epoch(pl.col(TIME[name]).cast(pl.Int64), time_unit="s")
               .dt.date().alias("_d"))
        for (d,), part in frame.with_columns(day).group_by("_d", maintain_order=True):
            rel = f"parquet/{name}/date={d}/part-g{generation:06d}.parquet"
            (marts / rel).parent.mkdir(parents=True, exist_ok=True)
            part.drop("_d").write_parquet(marts / rel)
            tables.setdefault(name, {})[str(d)] = rel
    (marts / "_manifests").mkdir(parents=True, exist_ok=True)
    (marts / "_manifests" / f"gen-{generation:06d}.json").write_text(json.dumps(
        {"generation": generation, "published_at_s": 0.0, "tables": tables}))


def mart_frame(name: str, rows: dict[str, Sequence[object]]) -> pl.DataFrame:
    """Rows of the sink's table ``name`` with its declared schema; columns not given are
    null (a table that gains a column does not break the fixtures)."""
    schema = BY_NAME[name].schema()
    n = len(next(iter(rows.values())))
    return pl.DataFrame({c: rows.get(c, [None] * n) for c in schema}, schema=schema)


def stub_gate(mart: str, frame: pl.DataFrame) -> GateResult:
    """Stands in for GX (its import costs seconds): one row-count expectation."""
    ok = frame.height > 0
    return GateResult(mart, ok, frame.height, [ExpectationOutcome(
        "expect_table_row_count_to_be_between", "table", ok, None, f"observed={frame.height}")])


def utc(s: int) -> str:
    return datetime.fromtimestamp(s, UTC).isoformat()
