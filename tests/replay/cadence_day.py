"""Mining MWh, hashrate and revenue of one replayed real day at 1, 5 and 60 s ASIC polling.

The fleet is the real miner API captures of ``tests.replay.real_fleet`` (400 miners, four
firmwares), scraped every P seconds over the ERCOT market day 2025-07-01 (05:00Z to 05:00Z
next day), with a revenue meter every second. Both power stages run in process, one batch
per second of event time, as ``tests/decisions/polling.py`` does (a day end to end on the
broker would take longer than the agents' throughput warrants for a measurement); the marts'
own transforms then give interval energy (``transforms.energy.interval_energy``) and
settlement (``transforms.settlement.build_settlement``) with the day's real LZ_WEST RT prices
(``infra/data``) and the policy hashprice.

    PYTHONPATH=. .venv/bin/python -m tests.replay.cadence_day

Run it against another tree (the one before sample-and-hold) with that tree first on the
path: ``PYTHONPATH=/tmp/before /work/main/.venv/bin/python /work/main/tests/replay/cadence_day.py``
(the corpus is read from the checkout the script lives in).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
import polars as pl

if __package__ in (None, ""):  # run as a file: the repository root it lives in
    sys.path.append(str(Path(__file__).resolve().parents[2]))

from schemas.events import SitePower  # noqa: E402
from schemas.grid import PriceSignal  # noqa: E402
from schemas.site import SiteConfig  # noqa: E402
from schemas.telemetry import AsicFrame, MeterFrame  # noqa: E402
from streams.decisions.power import (  # noqa: E402
    CombineState,
    PartialState,
    close_all,
    combine,
    fold_partials,
    index_site,
)
from streams.marts.configs import contracts_of  # noqa: E402
from streams.replay import scenario  # noqa: E402
from tests.replay.real_fleet import (  # noqa: E402
    ASIC_DECODER,
    HASHPRICE_USD_PER_PH_DAY,
    Model,
    asic_records,
    fleet_site,
    fleet_truth,
    poi_frame,
    real_models,
)
from transforms.energy import SITE_POWER_COLUMNS, interval_energy  # noqa: E402
from transforms.settlement import build_settlement  # noqa: E402

DAY_START = 1_751_346_000
"""2025-07-01T05:00:00Z: midnight in Houston (CDT), the start of the ERCOT market day."""
DAY_S = 86_400
PERIODS = (1, 5, 60)
PRICES = Path(__file__).resolve().parents[2] / "infra" / "scenarios" / "h100-ercot-day.toml"


def run_day(
    site: SiteConfig, models: list[Model], period_s: int, start_s: int, seconds: int
) -> list[SitePower]:
    """Stage 1 then stage 2 over ``seconds`` of event time, one batch per second, the
    end of input closing the rest (as the agents close a complete second)."""
    idx = index_site(site)
    sites = {site.site_id: idx}
    by_second: dict[int, list[AsicFrame | MeterFrame]] = {}
    for rec in asic_records(site.site_id, models, period_s, start_s, start_s + seconds):
        by_second.setdefault(math.floor(rec.ts_s), []).append(ASIC_DECODER.decode(rec.value))
    pstate, cstate = PartialState(), CombineState()
    powers: list[SitePower] = []
    for k in range(seconds):
        ts = start_s + k
        frames: list[AsicFrame | MeterFrame] = [
            *by_second.get(ts, []),
            poi_frame(site.site_id, ts, k, models),
        ]
        pstate, folded = fold_partials(pstate, frames, sites, source_partition="t:0", lateness_s=2)
        cstate, combined = combine(cstate, folded.partials, sites, now_s=0.0)
        powers.extend(combined.powers)
    cstate, combined = close_all(cstate, sites, now_s=0.0)
    powers.extend(combined.powers)
    return powers


def day_prices(start_s: int, seconds: int) -> pl.DataFrame:
    """The real LZ_WEST RT prices of the day (``[interval_start_s, price_usd_per_mwh]``)."""
    sc = scenario.load(PRICES)
    dec = msgspec.json.Decoder(PriceSignal)
    rows = [
        dec.decode(r.value)
        for name, recs in scenario.sources(sc).items()
        if name.startswith("prices")
        for r in recs
    ]
    return pl.DataFrame(
        {
            "interval_start_s": [int(p.interval_start_s) for p in rows],
            "price_usd_per_mwh": [Decimal(str(p.price_usd_per_mwh)) for p in rows],
        },
        schema={"interval_start_s": pl.Int64, "price_usd_per_mwh": pl.Decimal(38, 6)},
    ).filter(pl.col("interval_start_s").is_between(start_s, start_s + seconds, closed="left"))


def settle(
    site: SiteConfig, powers: Sequence[SitePower], prices: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(interval energy, settlement) of every whole interval, as the marts compute them."""
    frame = pl.DataFrame(
        [msgspec.structs.asdict(p) for p in powers], infer_schema_length=None
    ).select(SITE_POWER_COLUMNS)
    energy = interval_energy(frame)
    energy = energy.join(prices.select("interval_start_s"), on="interval_start_s", how="semi")
    hashprice = pl.DataFrame(
        {"start_s": [0], "hashprice_usd_per_ph_day": [Decimal(str(HASHPRICE_USD_PER_PH_DAY))]},
        schema={"start_s": pl.Int64, "hashprice_usd_per_ph_day": pl.Decimal(38, 6)},
    )
    settlement = build_settlement(
        energy, prices, contracts_of(site.site_id, site.contract), hashprice=hashprice
    )
    return energy, settlement


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else DAY_S
    models = real_models()
    mining_w, hashrate_ths = fleet_truth(models)
    truth_mwh = mining_w * seconds / 3.6e9
    truth_ph_days = hashrate_ths / 1000 * seconds / 86_400
    prices = day_prices(DAY_START, seconds)
    print(
        f"real captures: {', '.join(m.reading.model for m in models)}; "
        f"{sum(m.miners for m in models)} miners, {mining_w / 1e6:.6f} MW, "
        f"{hashrate_ths / 1000:.4f} PH/s; {seconds:,} s from {DAY_START} "
        f"({prices.height} priced intervals, hashprice ${HASHPRICE_USD_PER_PH_DAY:g}/PH/day)"
    )
    # Only priced intervals settle (the scenario's last price is posted after its end).
    priced_s = prices.height * 900
    truth_mwh, truth_ph_days = truth_mwh * priced_s / seconds, truth_ph_days * priced_s / seconds
    print(
        f"truth over the {prices.height} priced intervals: {truth_mwh:.6f} MWh mining, "
        f"{truth_ph_days:.6f} PH-days"
    )
    header = ("poll", "mining MWh", "of truth", "PH-days", "revenue $", "stale s", "s")
    print("{:>5} {:>12} {:>9} {:>11} {:>11} {:>8} {:>6}".format(*header))
    for period in PERIODS:
        t0 = time.perf_counter()
        site = fleet_site("day", models, asic_staleness_s=3.0 * period, start_s=DAY_START)
        powers = run_day(site, models, period, DAY_START, seconds)
        energy, settlement = settle(site, powers, prices)
        mwh = float(energy["mining_mwh"].sum())
        ph_days = float(energy["hashrate_ph_days"].sum())
        revenue = sum(settlement["mining_revenue_usd"].to_list(), Decimal(0))
        stale = sum(1 for p in powers if getattr(p, "stale_sources", 0))
        print(
            f"{period:>4}s {mwh:>12.6f} {mwh / truth_mwh:>9.4f} {ph_days:>11.6f} "
            f"{revenue:>11,.2f} {stale:>8} {time.perf_counter() - t0:>6.1f}"
        )


if __name__ == "__main__":
    main()
