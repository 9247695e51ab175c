"""Month-close timing for a year of one 400 MW site: ``python -m streams.bench.month_close``.

1. Generates a deterministic year of site power (1-minute by default, ``--resolution-s 1``
   for 1-second) for a 400 MW site in 2023, month by month, and publishes it the way the
   sink does (``parquet/site_power/date=<UTC date>/part-HH-g000001.parquet`` + manifest),
   with real prices (ERCOT DAM HB_HUBAVG 2023, each hourly price used for its four
   intervals: a stand-in for RT prices, which are not in the shared data for 2023) as
   ``grid_prices`` and real carbon intensity (Electricity Maps US-TEX-ERCO 2023, LCA) as
   ``grid_carbon``.
2. Times ``close_settlement`` and ``close_carbon`` (load Parquet, interval energy,
   settlement, carbon, report tables, Great Expectations gates, CSV + HTML) for each local
   month and for the whole year; prints seconds per step, rows and peak RSS.

The site: contract 400 MW flat at 38.50 USD/MWh; AI 120-340 MW with a daily shape, job
steps, bursts and noise; overhead 4 MW + 6 % of IT; mining (200 MW of 17.5 J/TH) absorbs
the surplus it saw a minute earlier, and is curtailed in hours priced above breakeven
(hashprice 50 USD/PH/day -> 119 USD/MWh).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from schemas.site import ContractBlock, CurtailmentPolicy, SiteConfig
from streams.reports.month_close import close_carbon, close_settlement
from streams.reports.quiet import quiet
from transforms.reports.period import Period
from transforms.sources import SHARED_DATA, read_emaps_carbon_hourly, read_ercot_dam_hourly

DATA = SHARED_DATA
DAM = DATA / "ercot_dam_hb_hubavg_hourly" / "ERCOT_DAM_HB_HUBAVG_2023.csv"
EMAPS = DATA / "ercot_carbon_intensity_hourly_emaps" / "US-TEX-ERCO_2023_hourly.csv"
SITE_ID = "bench400"
CONTRACT_W = 400e6
MINING_MAX_W = 200e6
J_PER_TH = 17.5
HASHPRICE = 50.0
BREAKEVEN = HASHPRICE / (0.024 * J_PER_TH)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def site_config(year: Period) -> SiteConfig:
    return SiteConfig(
        site_id=SITE_ID,
        name="benchmark 400 MW",
        settlement_point="HB_HUBAVG",
        interconnection_limit_mw=420.0,
        contract=[
            ContractBlock(
                start_s=year.start_s, end_s=year.end_s, mw=CONTRACT_W / 1e6, price_usd_per_mwh=38.5
            )
        ],
        gpu_pools=[],
        asic_models=[],
        meters=[],
        policy=CurtailmentPolicy(hashprice_usd_per_ph_day=HASHPRICE),
    )


def month_power(period: Period, res_s: int, hour_price: dict[int, float]) -> pl.DataFrame:
    """Deterministic site power of one month (seeded by the month's start)."""
    ts = np.arange(period.start_s, period.end_s, res_s, dtype=np.int64)
    rng = np.random.default_rng([20230, period.start_s])
    day = ((ts - 6 * 3600) % 86400) / 86400.0  # shape in CST; DST shifts it an hour, fine
    steps = rng.uniform(-25e6, 25e6, size=len(ts) // (6 * 3600 // res_s) + 1)
    ai = (
        250e6
        + 45e6 * np.sin(2 * np.pi * (day - 0.35))
        + np.repeat(steps, 6 * 3600 // res_s)[: len(ts)]
        + rng.normal(0, 2e6, len(ts))
    )
    spikes = rng.random(len(ts)) < 0.002  # AI bursts that push the site over contract
    ai = np.clip(ai + spikes * 60e6, 120e6, 340e6)
    price = np.array([hour_price.get(int(h), 0.0) for h in ts - ts % 3600])
    # the fleet follows the surplus a minute late: AI rises overdraw, AI falls are sold back
    lag = max(1, 60 // res_s)
    seen = np.concatenate([ai[:lag], ai[:-lag]])
    room = (CONTRACT_W - 4e6) / 1.06 - seen
    mining = np.where(price > BREAKEVEN, 0.0, np.clip(room, 0.0, MINING_MAX_W))
    overhead = 4e6 + 0.06 * (ai + mining)
    total = ai + mining + overhead
    return pl.DataFrame(
        {
            "site_id": SITE_ID,
            "ts_s": ts,
            "ai_w": ai,
            "mining_w": mining,
            "overhead_w": overhead,
            "total_w": total,
            "poi_meter_w": total,
            "contract_w": CONTRACT_W,
            "surplus_w": CONTRACT_W - ai - overhead,
            "hashrate_ths": mining / J_PER_TH,
        }
    )


def _publish(
    marts: Path,
    name: str,
    frame: pl.DataFrame,
    time_col: str,
    hourly: bool,
    tables: dict[str, dict[str, str]],
) -> None:
    t = pl.from_epoch(pl.col(time_col).cast(pl.Int64), time_unit="s")
    keys = [t.dt.date().alias("_d")] + ([t.dt.hour().alias("_h")] if hourly else [])
    for key, part in frame.with_columns(*keys).group_by(
        [k.meta.output_name() for k in keys], maintain_order=True
    ):
        d = key[0]
        unit = f"{d}/{key[1]:02d}" if hourly else str(d)
        rel = (
            f"parquet/{name}/date={d}/part-{key[1]:02d}-g000001.parquet"
            if hourly
            else f"parquet/{name}/date={d}/part-g000001.parquet"
        )
        (marts / rel).parent.mkdir(parents=True, exist_ok=True)
        part.drop("_d", "_h", strict=False).write_parquet(marts / rel)
        tables.setdefault(name, {})[unit] = rel


def generate(marts: Path, year: Period, res_s: int) -> int:
    """Publish the year's site power, grid prices and grid carbon; returns power rows."""
    dam = read_ercot_dam_hourly(DAM)
    hour_price = {
        int(k): float(v) for k, v in zip(dam["hour_start_s"], dam["price_usd_per_mwh"], strict=True)
    }
    tables: dict[str, dict[str, str]] = {}
    rows = 0
    for month in year.months():
        t = time.perf_counter()
        power = month_power(month, res_s, hour_price)
        _publish(marts, "site_power", power, "ts_s", True, tables)
        rows += power.height
        print(
            f"  generated {month.label}: {power.height:,} rows in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    prices = dam.select(
        pl.lit("ERCOT").alias("market"),
        "settlement_point",
        pl.lit("rt").alias("kind"),
        pl.col("hour_start_s").alias("h"),
        "price_usd_per_mwh",
    )
    offsets = pl.DataFrame({"o": [0, 900, 1800, 2700]})
    prices = prices.join(offsets, how="cross").select(
        "market",
        "settlement_point",
        "kind",
        (pl.col("h") + pl.col("o")).cast(pl.Float64).alias("interval_start_s"),
        (pl.col("h") + pl.col("o") + 900).cast(pl.Float64).alias("interval_end_s"),
        "price_usd_per_mwh",
        pl.lit(0.0).alias("published_s"),
    )
    _publish(marts, "grid_prices", prices, "interval_start_s", False, tables)
    _publish(marts, "grid_carbon", _intensity(year), "hour_start_s", False, tables)
    (marts / "_manifests").mkdir(parents=True, exist_ok=True)
    (marts / "_manifests" / "gen-000001.json").write_text(
        json.dumps({"generation": 1, "published_at_s": time.time(), "tables": tables})
    )
    return rows


def _intensity(year: Period) -> pl.DataFrame:
    """Hourly LCA intensity over the local year. The file is a UTC year, so the last 6
    local hours (2024-01-01 00:00-05:00 UTC) take the same hour of the previous day."""
    ci = read_emaps_carbon_hourly(EMAPS).select("hour_start_s", "ci_lca_g_per_kwh")
    have = dict(zip(ci["hour_start_s"].to_list(), ci["ci_lca_g_per_kwh"].to_list(), strict=True))
    hours = list(range(year.start_s, year.end_s, 3600))
    values = []
    for h in hours:
        back = h
        while back not in have:
            back -= 86400
        values.append(have[back])
    return pl.DataFrame(
        {
            "region": "ERCOT",
            "kind": "average",
            "hour_start_s": [float(h) for h in hours],
            "intensity_g_per_kwh": values,
            "source": "Electricity Maps US-TEX-ERCO 2023 (LCA)",
        }
    )


@dataclass
class Row:
    label: str
    intervals: int
    power_rows: int
    seconds: float
    steps: dict[str, float]
    rss_mb: float
    totals: dict[str, Decimal]
    """net_usd, poi_mwh and location_g of the period, exact."""


def _close(marts: Path, out: Path, period: Period, site: SiteConfig, gates: bool) -> Row:
    from transforms.gates import GateResult, run_gate

    def no_gate(mart: str, frame: pl.DataFrame) -> GateResult:
        return GateResult(mart, True, frame.height, [])

    gate = quiet(run_gate) if gates else no_gate
    t = time.perf_counter()
    s = close_settlement(marts, period, out, gate=gate, site=site)
    c = close_carbon(marts, period, out, gate=gate, site_id=site.site_id)
    seconds = time.perf_counter() - t
    steps = {f"settle: {k}": v for k, v in s.timings.items()}
    steps |= {f"carbon: {k}": v for k, v in c.timings.items()}
    power = next((x.rows for x in s.report.sources if x.table == "site_power_1s"), 0)
    totals = {
        "net_usd": s.report.summary["net_usd"][0],
        "poi_mwh": s.report.summary["poi_mwh"][0],
        "location_g": c.report.summary["location_g"][0],
    }
    return Row(
        period.label, s.report.intervals.height, power, seconds, steps, peak_rss_mb(), totals
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m streams.bench.month_close",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--year", type=int, default=2023, help="only 2023 has both data files")
    p.add_argument("--resolution-s", type=int, default=60, choices=[1, 5, 10, 60])
    p.add_argument("--workdir", type=Path, default=None, help="default: a new temp folder")
    p.add_argument("--months", type=int, default=12, help="close only the first N months")
    p.add_argument("--no-year", action="store_true", help="skip the whole-year close")
    p.add_argument("--no-gates", action="store_true", help="skip Great Expectations")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep the marts already generated in --workdir (same resolution)",
    )
    args = p.parse_args(argv)
    year = Period.year(args.year)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spillway-bench-"))
    marts, out = work / "marts", work / "reports"
    site = site_config(year)
    print(f"workdir {work}; resolution {args.resolution_s} s", file=sys.stderr)
    t = time.perf_counter()
    reuse = args.reuse and (marts / "_manifests" / "gen-000001.json").is_file()
    if reuse:
        power_rows = (
            pl.scan_parquet(
                marts / "parquet" / "site_power" / "**" / "*.parquet", hive_partitioning=False
            )
            .select(pl.len())
            .collect()
            .item()
        )
    else:
        power_rows = generate(marts, year, args.resolution_s)
    gen_s = time.perf_counter() - t
    files = sum(1 for _ in marts.rglob("*.parquet"))
    size = sum(f.stat().st_size for f in marts.rglob("*.parquet")) / 2**20
    how = "reused" if reuse else "generated"
    print(
        f"{how} {power_rows:,} site-power rows ({args.resolution_s} s) in {gen_s:.1f} s;"
        f" {files} Parquet files, {size:.0f} MiB; peak RSS {peak_rss_mb():.0f} MiB"
    )
    if not args.no_gates:
        t = time.perf_counter()
        import great_expectations  # noqa: F401 - one-off import cost, reported apart

        print(f"Great Expectations import: {time.perf_counter() - t:.1f} s (once per process)")
    rows: list[Row] = []
    for month in year.months()[: args.months]:
        rows.append(_close(marts, out, month, site, not args.no_gates))
        r = rows[-1]
        print(f"  closed {r.label}: {r.seconds:.2f} s", file=sys.stderr, flush=True)
    if not args.no_year:
        rows.append(_close(marts, out, year, site, not args.no_gates))
    _print(rows)
    print(f"peak RSS {peak_rss_mb():.0f} MiB; reports in {out}")
    return 0


def _print(rows: list[Row]) -> None:
    steps = list(dict.fromkeys(k for r in rows for k in r.steps))
    short = {k: k.replace("settle: ", "S:").replace("carbon: ", "C:") for k in steps}
    print("\nperiod   intervals  power_rows  total_s  peak_rss_MiB")
    for r in rows:
        print(
            f"{r.label:<8} {r.intervals:>9,} {r.power_rows:>11,} {r.seconds:>8.2f} "
            f"{r.rss_mb:>13.0f}"
        )
    months = [r for r in rows if len(r.label) == 7]
    if months:
        secs = [r.seconds for r in months]
        print(
            f"month close: mean {sum(secs) / len(secs):.2f} s, max {max(secs):.2f} s "
            f"over {len(secs)} months"
        )
    print("\nseconds by step (S: settlement close, C: carbon close)")
    for k in steps:
        vals = " ".join(f"{r.steps.get(k, 0.0):6.2f}" for r in rows)
        print(f"  {short[k]:<42} {vals}")
    print("  columns: " + " ".join(r.label for r in rows))
    if len(months) == 12 and len(rows) == 13:
        for k, v in rows[-1].totals.items():
            summed = sum((r.totals[k] for r in months), Decimal(0))
            print(f"year {k} {v} == sum of the 12 month closes {summed}: {v == summed}")


if __name__ == "__main__":
    sys.exit(main())
