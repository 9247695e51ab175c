"""The published settlement mart: interval energy + RT prices + the site config in force,
through ``transforms.settlement.build_settlement`` (pure: frames in, frames out).

Inputs, per interval of a site that has a config on ``site.config.v1``:

- energy: the ``interval_energy`` row (only intervals that are over);
- price: the stored ``grid_prices`` row of kind ``rt`` at the config's market and
  settlement point; an interval without one is not settled yet (it appears, without a
  revision, when its price arrives);
- contract: the config's contract blocks (prices to Decimal through their shortest text);
- hashprice: the network hashprice in force at the interval's start (``grid_hashprice``,
  from ``grid.hashprice.v1``: the latest ``ts_s`` at or before it, i.e. the value of the
  period the interval falls in, however late it was published; two sources for one start:
  the later published). Before the first stored value, the config's
  ``policy.hashprice_usd_per_ph_day`` (the controller's fallback too);
- pool fee: that config version's ``policy.pool_fee_fraction``. Mining revenue is the
  PH-days delivered x that hashprice x (1 - fee), what the pool pays, as the controller's
  breakevens count it; the fee withheld is ``mining_pool_fee_usd``, beside ``net_usd``.

The config is the version in force at the interval's start (``configs.assign_versions``),
so a new version changes the settlement of intervals from its ``updated_s`` on, never
quietly the ones before it.

Positions, ancillary services and 4CP come from files the site config names (the
settlement team's own inputs, read when the mart is built, paths relative to the working
directory): ``day_ahead_file`` (hourly DAM trades), ``ancillary_awards_file`` with
``mcpc_files`` (hourly awards priced at ERCOT's MCPC), ``four_cp_peaks_file`` with
``four_cp_method`` and ``transmission_rate_usd_per_kw_year``. Contract blocks settle at
``contract_settlement_point`` (a hub) when set: the hub-to-zone basis needs the hub's RT
price in ``grid_prices``. Credits and 4CP intervals passed to ``settle_intervals`` directly
take precedence over the config's. A file that cannot be read refuses the settlement
(``SettlementInputError``) rather than settling without it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import NamedTuple

import polars as pl

from schemas.site import SiteConfig
from streams.collectors.grid_feeds import FeedError, read_as_mcpc
from streams.marts.configs import (
    assign_versions,
    contracts_of,
    decimal_of,
    decode_config,
    latest_versions,
)
from streams.marts.derived import day_bounds
from transforms import ancillary
from transforms.four_cp import FourCpInputError, read_posted_peaks
from transforms.positions import PositionInputError, read_day_ahead_csv
from transforms.settlement import PRICE, SettlementInputError, build_settlement

PRICE_COLUMNS = ["market", "settlement_point", "kind", "interval_start_s", "price_usd_per_mwh"]
"""``grid_prices`` columns ``settle_intervals`` reads."""
HASHPRICE_COLUMNS = ["ts_s", "published_s", "usd_per_ph_day"]
"""``grid_hashprice`` columns ``settle_intervals`` reads."""


def hashprice_in_force(network: pl.DataFrame | None, policy: Decimal) -> pl.DataFrame:
    """``[start_s, hashprice_usd_per_ph_day]`` for ``build_settlement``: each network value
    from its period's start (ceiled to the second, so it never applies before it), the
    policy value from 0 (intervals before the first network value)."""
    fallback = pl.DataFrame(
        {"start_s": [0], "hashprice_usd_per_ph_day": [policy]},
        schema={"start_s": pl.Int64, "hashprice_usd_per_ph_day": PRICE},
    )
    if network is None or network.height == 0:
        return fallback
    values = (
        network.sort("ts_s", "published_s")
        .unique("ts_s", keep="last", maintain_order=True)
        .select(
            pl.col("ts_s").ceil().cast(pl.Int64).alias("start_s"),
            pl.col("usd_per_ph_day").cast(PRICE).alias("hashprice_usd_per_ph_day"),
        )
    )
    return pl.concat([fallback, values.filter(pl.col("start_s") > 0)])


def hashprice_days(
    changed_hours: Iterable[int], starts: Iterable[float], days: Iterable[date]
) -> set[date]:
    """The days of ``days`` that a value stored in ``grid_hashprice`` with its ``ts_s`` in
    one of ``changed_hours`` (new, or a later publication for the same start) re-settles:
    from its hour up to the next stored start after that hour (``starts``: every stored
    ``ts_s``), because every interval until then, however many days later, was valued at
    an older value or the policy fallback. Conservative within the hour."""
    ordered = sorted(starts)
    out: set[date] = set()
    for hour in set(changed_hours):
        i = bisect_left(ordered, hour + 3600)
        until = ordered[i] if i < len(ordered) else float("inf")
        out |= {d for d in days if day_bounds(d)[1] > hour and day_bounds(d)[0] < until}
    return out


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
    hashprices: pl.DataFrame | None = None,
) -> pl.DataFrame | None:
    """Settlement (``transforms.settlement.COLUMNS["settlement"]``) of the priced intervals
    of ``energy`` whose site has a config; None when there are none.

    ``grid_prices``: ``PRICE_COLUMNS``; ``configs``: ``site_configs`` rows (all versions);
    ``hashprices``: ``grid_hashprice`` rows (``HASHPRICE_COLUMNS``) up to the last interval.
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
        hashprice = hashprice_in_force(hashprices, version["hashprice_usd_per_ph_day"])
        pool_fee = decimal_of(config.policy.pool_fee_fraction)
        inputs = _config_inputs(config, priced)
        contracts = contracts_of(str(site_id), config.contract).with_columns(
            pl.Series(
                "settlement_point",
                [b.settlement_point or config.contract_settlement_point for b in config.contract],
                dtype=pl.String,
            )
        )
        from_config = four_cp_intervals is None
        parts.append(
            build_settlement(
                priced,
                prices,
                contracts,
                hashprice=hashprice,
                pool_fee_fraction=pool_fee,
                credits=None if credits is None else credits.filter(pl.col("site_id") == site_id),
                four_cp_intervals=inputs.four_cp if from_config else four_cp_intervals,
                four_cp_rate_usd_per_kw_year=(
                    decimal_of(config.transmission_rate_usd_per_kw_year)
                    if from_config
                    else four_cp_rate_usd_per_kw_year
                ),
                four_cp_method=config.four_cp_method,
                day_ahead=inputs.day_ahead,
                settlement_point=config.settlement_point,
                point_prices=all_rt_prices(grid_prices, config.market),
                ancillary=inputs.ancillary,
            )
        )
    if not parts:
        return None
    return pl.concat(parts).sort("site_id", "interval_start_s")


def all_rt_prices(grid_prices: pl.DataFrame, market: str) -> pl.DataFrame:
    """``[settlement_point, interval_start_s, price_usd_per_mwh]`` of kind ``rt``, every
    point of the market (hub prices for the basis of hub positions)."""
    return grid_prices.filter(pl.col("market") == market, pl.col("kind") == "rt").select(
        "settlement_point",
        pl.col("interval_start_s").cast(pl.Int64),
        pl.col("price_usd_per_mwh").cast(PRICE),
    )


class _Inputs(NamedTuple):
    day_ahead: pl.DataFrame | None
    ancillary: pl.DataFrame | None
    four_cp: pl.DataFrame | None


def _config_inputs(config: SiteConfig, energy: pl.DataFrame) -> _Inputs:
    """The position, award and peak files the config names, read and turned into what
    ``build_settlement`` takes for the intervals of ``energy``."""
    keys = energy.select("site_id", pl.col("interval_start_s").cast(pl.Int64))
    try:
        day_ahead = (
            None
            if config.day_ahead_file is None
            else read_day_ahead_csv(config.day_ahead_file, config.site_id)
        )
        four_cp = (
            None
            if config.four_cp_peaks_file is None
            else read_posted_peaks(
                config.four_cp_peaks_file, config.four_cp_method, config.timezone
            )
        )
        anc = None
        if config.ancillary_awards_file is not None:
            awards = ancillary.read_awards_csv(config.ancillary_awards_file).filter(
                pl.col("site_id") == config.site_id,
                pl.col("hour_start_s").is_in(
                    (keys["interval_start_s"] // 3600 * 3600).unique().implode()
                ),
            )
            mcpc = _mcpc(config.mcpc_files)
            cap = ancillary.capacity_by_hour(awards, mcpc)
            hourly = ancillary.failure_by_hour(cap, ancillary.provided_by_hour(energy))
            anc = ancillary.by_interval(hourly, keys)
    except OSError as exc:
        raise SettlementInputError(
            f"site {config.site_id}: cannot read a settlement input file: {exc}"
        ) from exc
    except (FeedError, ancillary.AncillaryInputError, PositionInputError, FourCpInputError) as exc:
        raise SettlementInputError(f"site {config.site_id}: {exc}") from exc
    return _Inputs(day_ahead, anc, four_cp)


def _mcpc(files: list[str]) -> pl.DataFrame | None:
    rows = [r for f in files for r in read_as_mcpc(f)]
    if not rows:
        return None
    return ancillary.hourly_mcpc(
        pl.DataFrame(
            {
                "market": [r.market for r in rows],
                "service": [r.service for r in rows],
                "interval_start_s": [int(r.interval_start_s) for r in rows],
                "interval_end_s": [int(r.interval_end_s) for r in rows],
                "mcpc_usd_per_mw_h": [r.mcpc_usd_per_mw_h for r in rows],
            },
            schema_overrides={"mcpc_usd_per_mw_h": PRICE},
        )
    )
