"""Hashprice and the power price at which a miner model breaks even. Exact (Decimal).

hashprice ($/PH/day) = 86,400 s x 1e15 H/s / (difficulty x 2^32 H/block)   blocks per PH-day
                       x (subsidy + fees) BTC/block x BTC price $/BTC
breakeven ($/MWh)    = hashprice / (0.024 x J/TH)
  because one TH/s for a day at J/TH joules per TH uses J/TH x 86,400 J = 0.024 x J/TH MWh
  per PH/day (1 PH = 1000 TH; 1000 x 86,400 J = 0.024 MWh).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.site import SiteConfig

Number = Decimal | int | float | str

_SECONDS_PER_DAY = Decimal(86_400)
_HASHES_PER_PH = Decimal(10) ** 15
_HASHES_PER_DIFFICULTY = Decimal(2) ** 32
_MWH_PER_J_PER_TH_PH_DAY = Decimal("0.024")


class Hashprice(msgspec.Struct, kw_only=True, frozen=True):
    """A hashprice update for the curtailment controller (e.g. from a pool or index feed)."""

    ts_s: float
    usd_per_ph_day: float


def _dec(x: Number, name: str) -> Decimal:
    # str() first so that a float like 0.1 becomes Decimal("0.1"), not its binary expansion.
    d = x if isinstance(x, Decimal) else Decimal(str(x))
    if not d.is_finite():
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return d


def hashprice_usd_per_ph_day(
    difficulty: Number, block_reward_btc: Number, btc_price_usd: Number
) -> Decimal:
    """Expected revenue of 1 PH/s for one day, USD (unrounded)."""
    d = _dec(difficulty, "difficulty")
    if d <= 0:
        raise ValueError(f"difficulty must be positive, got {difficulty!r}")
    reward = _dec(block_reward_btc, "block_reward_btc")
    price = _dec(btc_price_usd, "btc_price_usd")
    blocks_per_ph_day = _SECONDS_PER_DAY * _HASHES_PER_PH / (d * _HASHES_PER_DIFFICULTY)
    return blocks_per_ph_day * reward * price


def breakeven_usd_per_mwh(hashprice: Number, j_per_th: Number) -> Decimal:
    """Power price at which a miner of efficiency ``j_per_th`` earns exactly its power cost."""
    eff = _dec(j_per_th, "j_per_th")
    if eff <= 0:
        raise ValueError(f"j_per_th must be positive, got {j_per_th!r}")
    return _dec(hashprice, "hashprice") / (_MWH_PER_J_PER_TH_PH_DAY * eff)


def model_breakevens(site: SiteConfig, hashprice: Number) -> dict[str, Decimal]:
    """Breakeven $/MWh of each ASIC model of ``site``."""
    return {m.model: breakeven_usd_per_mwh(hashprice, m.j_per_th) for m in site.asic_models}
