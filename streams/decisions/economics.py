"""Mining economics as it moves: hashprice from network data, net of pool fee and site costs,
and the breakeven power price of each miner model. Pure (no I/O).

hashprice ($/PH/day, gross) = blocks a PH/s finds per day at the difficulty
                              x (subsidy + fees) BTC per block x BTC price
net ($/PH/day)              = gross x (1 - pool fee)
breakeven ($/MWh)           = net / (0.024 x J/TH) - cost adder - restart cost per MWh
  (``breakeven.breakeven_usd_per_mwh``; 0.024 MWh = 1 PH/s for a day at 1 J/TH).

The restart cost ($ per MW per sleep-and-wake cycle) is spread over ``restart_amortize_h``:
a curtailment shorter than that does not pay back the restart, so the price must clear
breakeven by that much more before a model is put to sleep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import msgspec

from schemas.grid import HashpriceSignal
from schemas.site import CurtailmentPolicy
from streams.decisions.breakeven import (
    Number,
    breakeven_usd_per_mwh,
    hashprice_usd_per_ph_day,
)
from streams.decisions.fleet import Fleet

DAY_S = 86_400.0


def network_hashprice(
    difficulty: Number,
    subsidy_btc_per_block: Number,
    fees_btc_per_block: Number,
    btc_price_usd: Number,
) -> Decimal:
    """Gross hashprice, $/PH/day, from difficulty, block subsidy, fees and BTC price."""
    reward = Decimal(str(subsidy_btc_per_block)) + Decimal(str(fees_btc_per_block))
    return hashprice_usd_per_ph_day(difficulty, reward, btc_price_usd)


def daily_hashprices(
    rows: Iterable[Mapping[str, object]], source: str = "coinmetrics"
) -> list[HashpriceSignal]:
    """One signal per day of network data (``transforms.sources`` ``btc_network_daily``
    rows: start_s, block_count, difficulty, fees_btc, issuance_btc, price_usd_per_btc).

    A day's value covers that day (``ts_s`` its start: settlement values the day's mining at
    it) but is known only once the day is over (its mean difficulty and fees), so it is
    published at the day's end: the controller acts on it from then, never before.
    """
    out: list[HashpriceSignal] = []
    for r in rows:
        blocks = _num(r, "block_count")
        if blocks <= 0:
            raise ValueError(f"network day {r.get('start_s')!r}: block_count must be positive")
        subsidy = _num(r, "issuance_btc") / blocks
        fees = _num(r, "fees_btc") / blocks
        price = _num(r, "price_usd_per_btc")
        difficulty = _num(r, "difficulty")
        start = _num(r, "start_s")
        gross = network_hashprice(difficulty, subsidy, fees, price)
        out.append(
            HashpriceSignal(
                source=f"{source}:{int(start)}",
                ts_s=start,
                published_s=start + DAY_S,
                usd_per_ph_day=float(gross),
                difficulty=difficulty,
                subsidy_btc_per_block=subsidy,
                fees_btc_per_block=fees,
                btc_price_usd=price,
            )
        )
    return out


def _num(r: Mapping[str, object], key: str) -> float:
    v = r.get(key)
    if not isinstance(v, int | float):
        raise ValueError(f"network data: {key} is {v!r}, not a number")
    return float(v)


def net_hashprice(gross_usd_per_ph_day: float, policy: CurtailmentPolicy) -> float:
    """Hashprice the site keeps after its pool's fee."""
    if not 0.0 <= policy.pool_fee_fraction < 1.0:
        raise ValueError(f"pool_fee_fraction must be in [0, 1), got {policy.pool_fee_fraction}")
    return gross_usd_per_ph_day * (1.0 - policy.pool_fee_fraction)


def restart_usd_per_mwh(policy: CurtailmentPolicy) -> float:
    """The restart cost as a price premium, $/MWh (spread over ``restart_amortize_h``)."""
    if policy.restart_cost_usd_per_mw <= 0:
        return 0.0
    if policy.restart_amortize_h <= 0:
        raise ValueError(f"restart_amortize_h must be positive, got {policy.restart_amortize_h}")
    return policy.restart_cost_usd_per_mw / policy.restart_amortize_h


class Breakevens(msgspec.Struct, kw_only=True, frozen=True):
    """Per-model thresholds of the economic trigger at one hashprice."""

    gross_usd_per_ph_day: float
    net_usd_per_ph_day: float
    curtail_above: dict[str, float]
    """Model -> price above which sleeping it saves money: breakeven + restart premium."""
    resume_below: dict[str, float]
    """Model -> price below which it mines at a profit again: breakeven."""


def fleet_breakevens(gross_usd_per_ph_day: float, policy: CurtailmentPolicy, fleet: Fleet) -> (
    Breakevens
):
    """Breakeven of each model of ``fleet`` with the site's pool fee, cost adder and restart
    cost (least efficient model first, as ``fleet.models``)."""
    net = net_hashprice(gross_usd_per_ph_day, policy)
    premium = restart_usd_per_mwh(policy)
    resume: dict[str, float] = {}
    curtail: dict[str, float] = {}
    for m in fleet.models:
        be = float(breakeven_usd_per_mwh(net, m.j_per_th)) - policy.cost_adder_usd_per_mwh
        resume[m.model] = be
        curtail[m.model] = be + premium
    return Breakevens(
        gross_usd_per_ph_day=gross_usd_per_ph_day,
        net_usd_per_ph_day=net,
        curtail_above=curtail,
        resume_below=resume,
    )
