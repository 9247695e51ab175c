"""The published settlement mart: interval energy + RT prices + the site config in force,
through ``transforms.settlement.build_settlement`` (pure: frames in, frames out).

Inputs, per interval of a site that has a config on ``site.config.v1``:

- energy: the ``interval_energy`` row (only intervals that are over);
- price: the stored ``grid_prices`` row of kind ``rt`` at the config's market and
  settlement point; an interval without one is not settled yet (it appears, without a
  revision, when its price arrives);
- contract: the config's contract blocks (prices to Decimal through their shortest text);
- hashprice: the config's ``policy.hashprice_usd_per_ph_day``, the value the curtailment
  controller uses for its breakeven. It is a policy setting, not a market index: mining
  revenue in this mart is that valuation of the PH-days delivered.

The config is the version in force at the interval's start (``configs.assign_versions``),
so a new version changes the settlement of intervals from its ``updated_s`` on, never
quietly the ones before it.

Credits and 4CP: ``settle_intervals`` passes demand-response / ancillary awards and the 4CP
intervals with their transmission rate through to ``build_settlement`` when it is given
them. Nothing feeds them yet: there is no awards topic or table (MW and USD/MW-h per awarded
hour), no table of ERCOT's posted 4CP intervals, and no transmission rate (USD/kW-yr) in the
site config, so the published mart's ``dr_credit_usd``, ``ancillary_credit_usd`` and
``four_cp_usd`` are 0 until those inputs exist (``tests/marts/test_settle_credits.py``).
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from streams.marts.configs import assign_versions, contracts_of, decode_config, latest_versions
from transforms.settlement import PRICE, build_settlement

PRICE_COLUMNS = ["market", "settlement_point", "kind", "interval_start_s", "price_usd_per_mwh"]
"""``grid_prices`` columns ``settle_intervals`` reads."""


def rt_prices_at(grid_prices: pl.DataFrame, market: str, settlement_point: str) -> pl.DataFrame:
    """``[interval_start_s, price_usd_per_mwh]`` of kind ``rt`` at one settlement point."""
    return grid_prices.filter(
        pl.col("market") == market,
        pl.col("settlement_point") == settlement_point,
        pl.col("kind") == "rt",
    ).select(pl.col("interval_start_s").cast(pl.Int64), pl.col("price_usd_per_mwh").cast(PRICE))


def settle_intervals(
    energy: pl.DataFrame,
    grid_prices: pl.DataFrame,
    configs: pl.DataFrame,
    *,
    credits: pl.DataFrame | None = None,
    four_cp_intervals: pl.DataFrame | None = None,
    four_cp_rate_usd_per_kw_year: Decimal = Decimal(0),
) -> pl.DataFrame | None:
    """Settlement (``transforms.settlement.COLUMNS["settlement"]``) of the priced intervals
    of ``energy`` whose site has a config; None when there are none.

    ``grid_prices``: ``PRICE_COLUMNS``; ``configs``: ``site_configs`` rows (all versions).
    ``credits``, ``four_cp_intervals``, ``four_cp_rate_usd_per_kw_year``: as
    ``build_settlement`` takes them (credits of every site; each site gets its own rows).
    Raises ``transforms.settlement.SettlementInputError`` when an input is malformed.
    """
    if energy.height == 0 or configs.height == 0:
        return None
    assigned = assign_versions(energy, configs)
    versions = latest_versions(configs)
    parts: list[pl.DataFrame] = []
    for (site_id, updated_s), rows in assigned.group_by(
        "site_id", "updated_s", maintain_order=True
    ):
        version = versions.filter(
            pl.col("site_id") == site_id, pl.col("updated_s") == updated_s
        ).row(0, named=True)
        config = decode_config(version["config_json"])
        prices = rt_prices_at(grid_prices, config.market, config.settlement_point)
        priced = rows.drop("updated_s").join(prices, on="interval_start_s", how="semi")
        if priced.height == 0:
            continue
        hashprice = pl.DataFrame(
            {
                "start_s": [int(priced["interval_start_s"].min())],  # type: ignore[arg-type]
                "hashprice_usd_per_ph_day": [version["hashprice_usd_per_ph_day"]],
            },
            schema={"start_s": pl.Int64, "hashprice_usd_per_ph_day": PRICE},
        )
        parts.append(
            build_settlement(
                priced,
                prices,
                contracts_of(str(site_id), config.contract),
                hashprice=hashprice,
                credits=None if credits is None else credits.filter(pl.col("site_id") == site_id),
                four_cp_intervals=four_cp_intervals,
                four_cp_rate_usd_per_kw_year=four_cp_rate_usd_per_kw_year,
            )
        )
    if not parts:
        return None
    return pl.concat(parts).sort("site_id", "interval_start_s")
