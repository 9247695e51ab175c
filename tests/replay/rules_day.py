"""One real ERCOT day under the market rules, each rule before and after.

2023-07-12 at LZ_WEST (ERCOT NP6-785-ER via wattgap: two negative intervals, 10:00 and
10:15 CDT) with the day's DAM ancillary clearing prices (NP4-181-ER), and a flat load: AI
200 MW + mining 150 MW + 5 % overhead, a 300 MW forward block at $45.25/MWh, a 400 MW
interconnection with 5 MW headroom, miners at 17.5 J/TH, hashprice $50/PH/day, a 2.5 % pool
fee, and awards of 50 MW ECRS and 25 MW RRS every hour. Each rule's "before" is the old rule
applied to the same inputs; "after" is the project's transforms (``build_settlement``,
``transforms.ancillary``).

``PYTHONPATH=. .venv/bin/python -m tests.replay.rules_day``
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal

import polars as pl

from tests.transforms.test_transforms_ancillary import MCPC_2023_07, mcpc_frame
from transforms.ancillary import by_interval, capacity_by_hour, hourly_mcpc
from transforms.energy import interval_energy
from transforms.settlement import build_settlement
from transforms.sources import SHARED_DATA

RT_SPP = SHARED_DATA / "ercot_market" / "rt_spp" / "wattgap_rtm_spp_lz_2023-07_08.csv"
DAY_CT = "2023-07-12"
START = int(datetime.fromisoformat(f"{DAY_CT}T00:00:00-05:00").timestamp())
AI_W, MINING_W = 200e6, 150e6
OVERHEAD_W = 0.05 * (AI_W + MINING_W)
CONTRACT_MW, INTERCONNECTION_MW, HEADROOM_MW = 300.0, 400.0, 5.0
HASHPRICE, POOL_FEE = Decimal(50), Decimal("0.025")
AWARDS = {"ECRS": Decimal(50), "RRS": Decimal(25)}


def prices() -> pl.DataFrame:
    with RT_SPP.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["interval_start_ct"].startswith(DAY_CT)]
    return pl.DataFrame(
        {
            "interval_start_s": [
                int(datetime.fromisoformat(r["interval_start_ct"]).timestamp()) for r in rows
            ],
            "price_usd_per_mwh": [Decimal(r["LZ_WEST"]) for r in rows],
        },
        schema={"interval_start_s": pl.Int64, "price_usd_per_mwh": pl.Decimal(38, 6)},
    )


def energy(mining_w: float) -> pl.DataFrame:
    total = AI_W + mining_w + OVERHEAD_W
    n = 86_400
    return interval_energy(
        pl.DataFrame(
            {
                "site_id": ["s"] * n,
                "ts_s": list(range(START, START + n)),
                "ai_w": [AI_W] * n,
                "mining_w": [mining_w] * n,
                "overhead_w": [OVERHEAD_W] * n,
                "total_w": [total] * n,
                "poi_meter_w": [total] * n,
                "contract_w": [CONTRACT_MW * 1e6] * n,
                "hashrate_ths": [mining_w / 17.5] * n,
            }
        )
    )


def settle(mining_w: float, *, pool_fee: Decimal, ancillary: pl.DataFrame | None) -> pl.DataFrame:
    contracts = pl.DataFrame(
        {
            "site_id": ["s"],
            "start_s": [START],
            "end_s": [START + 86_400],
            "mw": [CONTRACT_MW],
            "price_usd_per_mwh": [Decimal("45.25")],
        }
    )
    hashprice = pl.DataFrame(
        {"start_s": [START - 86_400], "hashprice_usd_per_ph_day": [HASHPRICE]},
        schema={"start_s": pl.Int64, "hashprice_usd_per_ph_day": pl.Decimal(38, 6)},
    )
    return build_settlement(
        energy(mining_w),
        prices(),
        contracts,
        hashprice=hashprice,
        pool_fee_fraction=pool_fee,
        ancillary=ancillary,
    )


def ancillary() -> pl.DataFrame:
    n = 24 * len(AWARDS)
    awards = pl.DataFrame(
        {
            "site_id": ["s"] * n,
            "service": [svc for svc in AWARDS for _ in range(24)],
            "market": ["DAM"] * n,
            "hour_start_s": [START + h * 3600 for _ in AWARDS for h in range(24)],
            "mw": [mw for mw in AWARDS.values() for _ in range(24)],
            "clearing_price_usd_per_mw": [None] * n,  # the day's MCPC
        },
        schema={
            "site_id": pl.String,
            "service": pl.String,
            "market": pl.String,
            "hour_start_s": pl.Int64,
            "mw": pl.Decimal(38, 6),
            "clearing_price_usd_per_mw": pl.Decimal(38, 6),
        },
    )
    return by_interval(capacity_by_hour(awards, hourly_mcpc(mcpc_frame(MCPC_2023_07))))


def total(frame: pl.DataFrame, col: str) -> Decimal:
    return sum(frame[col].to_list(), Decimal(0))


def main() -> None:
    after = settle(MINING_W, pool_fee=POOL_FEE, ancillary=ancillary())
    gross = settle(MINING_W, pool_fee=Decimal(0), ancillary=None)
    negative = after.filter(pl.col("rt_purchase_usd") > 0)
    # The old rule: the site limit was min(interconnection, contract) - headroom, so miners
    # were shed down to it whenever the site drew above contract.
    old_limit_w = (min(INTERCONNECTION_MW, CONTRACT_MW) - HEADROOM_MW) * 1e6
    shed_w = min(MINING_W, max(0.0, AI_W + MINING_W + OVERHEAD_W - old_limit_w))
    ceiling = settle(MINING_W - shed_w, pool_fee=Decimal(0), ancillary=None)  # all old rules
    rows = [
        (
            "negative price: intervals published",
            f"0 of 96 (gate wants rt_purchase <= 0; {negative.height} intervals are receipts)",
            f"{after.height} of 96; receipts ${total(negative, 'rt_purchase_usd'):,.2f}",
        ),
        (
            "ancillary capacity (ECRS 50, RRS 25 MW)",
            "$0.00 (never passed to settlement)",
            f"${total(after, 'ancillary_credit_usd'):,.2f}",
        ),
        (
            "mining revenue (pool fee 2.5 %)",
            f"${total(gross, 'mining_revenue_usd'):,.2f} (gross)",
            f"${total(after, 'mining_revenue_usd'):,.2f} "
            f"(fee ${total(after, 'mining_pool_fee_usd'):,.2f})",
        ),
        (
            "site limit (contract not a ceiling)",
            f"{shed_w / 1e6:.1f} MW of miners shed all day; mining "
            f"${total(ceiling, 'mining_revenue_usd'):,.2f} (gross)",
            f"0 MW shed (367.5 MW < {INTERCONNECTION_MW - HEADROOM_MW:.0f} MW); mining "
            f"${total(after, 'mining_revenue_usd'):,.2f}",
        ),
        (
            "net of the day",
            f"held by the gate (${total(ceiling, 'net_usd'):,.2f} had it been published under "
            "the old rules)",
            f"${total(after, 'net_usd'):,.2f}",
        ),
    ]
    print(f"{DAY_CT} LZ_WEST, flat 367.5 MW load, 300 MW forward at $45.25 (see module doc)")
    for rule, before, now in rows:
        print(f"- {rule}\n    before: {before}\n    after:  {now}")


if __name__ == "__main__":
    main()
