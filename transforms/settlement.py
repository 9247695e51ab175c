"""Settlement per 15-minute interval, in exact decimals.

Quantities come from ``transforms.energy.interval_energy`` (float MWh) and are fixed once,
to ``pl.Decimal(38, 6)`` MWh (1 Wh) and ``pl.Decimal(38, 9)`` PH-days, by the float->decimal
cast (nearest; a value exactly half a Wh away from two neighbours is resolved by its binary
float, an error of at most 0.5 Wh). From there every product is exact (operands are widened to
scale 12 first because polars keeps the larger operand scale on multiplication).

Money rule: each component is computed exactly, then rounded to cents with **ROUND_HALF_EVEN**
(banker's rounding, Python's ``decimal`` default; unbiased over many intervals), and
``net_usd`` is the sum of the rounded components, so it always equals that sum to the cent.

Sign convention: every ``*_usd`` component is a cash flow **to the site** (+ received,
- paid).

- Forward: the contract blocks' MWh in the interval x their price, paid.
- Day-ahead: hourly DAM trades, a quarter of the hour's MWh per interval x the DA SPP, paid
  when bought, received when sold (Nodal Protocols 4.6.2.1, 4.6.2.2; ``transforms.positions``).
- Real-time imbalance: ERCOT settles the interval's net at the load zone: ``positions -
  metered (POI)``, positions = forward + day-ahead MWh (6.6.3.2). If positive, the surplus
  that mining did not absorb is sold back at the settlement point price (credit); if
  negative, the draw above the positions is bought at that price (charge). The contract is
  a position, not a ceiling.
- Basis: a position held at a hub settles there (6.6.3.3), so it carries
  ``MWh x (RT_hub - RT_zone)``, cash to the site (``transforms.positions``).
- Mining revenue: PH-days delivered x hashprice (USD/PH/day, gross) x (1 - pool fee): what
  the pool pays. The gross hashprice is the network's; the pool withholds its fee before
  paying, so the fee is never cash the site has. ``mining_pool_fee_usd`` shows it beside
  (gross rounded less net rounded, so revenue + fee = the gross to the cent), outside
  ``net_usd``.
- Demand response and ancillary credits: MW x hours of overlap x USD/MW-h of each credited
  event.
- Held: an interval whose POI quantity is unknown (``poi_mwh`` null: a gap in the revenue
  meter, ``transforms.energy``) is not settled as if nothing had been drawn. ERCOT settles
  a Load's real-time energy on its metered quantity (Nodal Protocols 6.6.3.2), and a
  missing quantity is a meter-data problem to fix, not a zero. The row is kept with
  ``settled`` false and ``held_reason``; the components that need the POI quantity
  (imbalance, 4CP) and ``net_usd`` are null, so no total can quietly include a made-up zero.
- Ancillary capacity and failure to provide: per interval amounts from
  ``transforms.ancillary`` (capacity MW x MCPC for every awarded hour, deployed or not,
  Nodal Protocols 4.6.4.1 / 6.7.1; failed MW x MCPC charged, 6.7.3), added to
  ``ancillary_credit_usd`` and ``ancillary_failure_usd``.
- 4CP exposure: if the interval is a coincident-peak interval of the method (``4CP``: the
  June-September monthly peaks, ``12CP``: every month's; ``transforms.four_cp``), its
  average load (kW) sets 1/n of next year's transmission tag, so it accrues
  ``kW_avg / n x rate`` = ``POI MWh x 4000 / n x rate`` (USD/kW-yr); paid.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from streams.errors import TerminalError
from transforms import positions as pos
from transforms.calendar import INTERVAL_S
from transforms.four_cp import CpMethod, check_cp_months, intervals_per_tag

MWH = pl.Decimal(38, 6)
PH_DAYS = pl.Decimal(38, 9)
PRICE = pl.Decimal(38, 6)
EXACT = pl.Decimal(38, 12)
CENTS = pl.Decimal(38, 2)
MINING = pl.Decimal(38, 21)
"""PH-days (9 places) x hashprice (6) x (1 - fee) (6): exact at 21 places, and 17 integer
digits are far above any interval's mining money (EXACT, 12 places, would round it)."""

COMPONENTS = ["forward_usd", "day_ahead_usd", "rt_sell_back_usd", "rt_purchase_usd",
              "basis_usd", "mining_revenue_usd", "dr_credit_usd", "ancillary_credit_usd",
              "ancillary_failure_usd", "four_cp_usd"]
"""Money components of ``net_usd``, each rounded half-even to cents; net = their sum."""

COLUMNS: dict[str, dict[str, str]] = {
    "settlement": {
        "site_id": "site identifier",
        "interval_start_s": "settlement interval start, UTC epoch seconds (key with site_id)",
        "ai_mwh": "AI energy, MWh (Decimal 38,6)",
        "mining_mwh": "mining energy, MWh (Decimal 38,6)",
        "overhead_mwh": "facility overhead energy, MWh (Decimal 38,6)",
        "poi_mwh": "revenue-meter (POI) energy, the settled quantity, MWh (Decimal 38,6)",
        "forward_mwh": "contracted forward energy in the interval, MWh (Decimal 38,6)",
        "day_ahead_mwh": "net day-ahead energy bought (+) or sold (-) in the interval, MWh "
                         "(Decimal 38,6)",
        "position_mwh": "forward_mwh + day_ahead_mwh: what the site holds before real time, "
                        "MWh",
        "sell_back_mwh": "max(position - poi, 0): surplus not absorbed, sold at RT, MWh "
                         "(null when held)",
        "purchase_mwh": "max(poi - position, 0): draw above the positions, bought at RT, MWh "
                        "(null when held)",
        "rt_price_usd_per_mwh": "real-time settlement point price, USD/MWh (Decimal 38,6)",
        "hashrate_ph_days": "mining work delivered, PH/s x days (Decimal 38,9)",
        "hashprice_usd_per_ph_day": "hashprice in force, gross of pool fees, USD/PH/day "
                                    "(Decimal 38,6)",
        "pool_fee_fraction": "pool fee in force (the site config's policy.pool_fee_fraction), "
                             "share of gross mining revenue (Decimal 38,6)",
        "forward_usd": "- contract MWh x contract price, USD (cents, half-even)",
        "day_ahead_usd": "- day-ahead MWh bought x DA SPP (+ when sold), USD (cents)",
        "rt_sell_back_usd": "+ sell_back_mwh x RT price, USD (cents, half-even)",
        "rt_purchase_usd": "- purchase_mwh x RT price, USD (cents, half-even)",
        "basis_usd": "+ MWh held at other points (hubs) x (RT at the point - RT at the load "
                     "zone), USD (cents)",
        "mining_revenue_usd": "+ hashrate_ph_days x hashprice x (1 - pool_fee_fraction): what "
                              "the pool pays, USD (cents, half-even)",
        "dr_credit_usd": "+ demand-response credits, MW x h x USD/MW-h, USD (cents, half-even)",
        "ancillary_credit_usd": "+ ancillary capacity, awarded MW x MCPC per awarded hour, "
                                "USD (cents)",
        "ancillary_failure_usd": "- failure to provide, failed MW x MCPC, USD (cents)",
        "four_cp_usd": "- 4CP transmission accrual, POI MWh x 4000/n x USD/kW-yr, USD (cents)",
        "net_usd": "sum of the ten components above, USD (exact, cents); null when held",
        "mining_pool_fee_usd": "pool fee withheld, not in net_usd: hashrate_ph_days x hashprice "
                               "(cents, half-even) - mining_revenue_usd, so the two add up to "
                               "the gross, USD",
        "settled": "true when the interval is settled; false when held (see held_reason)",
        "held_reason": "why the interval is held from settlement (text; null when settled), "
                       "e.g. a POI meter gap",
        "energy_reconciled": "true when the interval's energy reconciled to the revenue meter "
                             "(interval_energy.reconciled; null if not given)",
    },
    "hashprice": {
        "start_s": "start of validity, UTC epoch seconds",
        "hashprice_usd_per_ph_day": "expected mining revenue per PH/s per day, USD/PH/day",
    },
}


class SettlementInputError(TerminalError, ValueError):
    """An input needed to settle an interval is missing or malformed."""


# ---------------------------------------------------------------- hashprice


def hashprice_usd_per_ph_day(difficulty: float, block_reward_btc: float,
                             btc_price_usd: float) -> float:
    """Hashprice = 86400 x 1e15 / (D x 2^32) x (subsidy + fees) x P_BTC, in USD/PH/day.

    One PH/s finds ``86400e15 / (D * 2**32)`` blocks a day (a block takes D x 2^32 hashes on
    average); each pays ``block_reward_btc`` (subsidy + fees).
    """
    if difficulty <= 0:
        raise SettlementInputError(f"hashprice: difficulty must be > 0, got {difficulty}")
    return 86400e15 / (difficulty * 2.0**32) * block_reward_btc * btc_price_usd


def hashprice_from_network(daily: pl.DataFrame) -> pl.DataFrame:
    """Daily hashprice from network data (``sources.read_coinmetrics_btc_daily`` columns:
    start_s, block_count, difficulty, fees_btc, issuance_btc, price_usd_per_btc).

    The block reward is the day's average: (issuance + fees) / blocks. Returns
    ``COLUMNS["hashprice"]``.
    """
    need = ["start_s", "block_count", "difficulty", "fees_btc", "issuance_btc",
            "price_usd_per_btc"]
    missing = [c for c in need if c not in daily.columns]
    if missing:
        raise SettlementInputError(f"hashprice_from_network: missing column(s) {missing}")
    reward = (pl.col("issuance_btc") + pl.col("fees_btc")) / pl.col("block_count")
    return daily.select(
        "start_s",
        (86400e15 / (pl.col("difficulty") * 2.0**32) * reward * pl.col("price_usd_per_btc"))
        .alias("hashprice_usd_per_ph_day"),
    ).sort("start_s")


# ---------------------------------------------------------------- helpers


def _need(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SettlementInputError(f"{what}: missing column(s) {missing}; has {frame.columns}")


def _mul(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Exact decimal product (polars would keep only the larger operand scale)."""
    return a.cast(EXACT) * b.cast(EXACT)


def _cents(x: pl.Expr) -> pl.Expr:
    return x.round(2).cast(CENTS)  # polars rounds decimals half-to-even


def _overlap_s(start: str, end: str) -> pl.Expr:
    lo = pl.max_horizontal(pl.col(start), pl.col("interval_start_s"))
    hi = pl.min_horizontal(pl.col(end), pl.col("interval_start_s") + INTERVAL_S)
    return (hi - lo).clip(lower_bound=0)


def _spread(events: pl.DataFrame, keys: pl.DataFrame, value_cols: list[str]) -> pl.DataFrame:
    """Cross events with the site's intervals and keep the overlapping pairs."""
    j = keys.join(events, on="site_id", how="inner")
    return j.with_columns(_overlap_s("start_s", "end_s").alias("_ov")).filter(
        pl.col("_ov") > 0).select("site_id", "interval_start_s", "_ov", *value_cols)


def _block_money(events: pl.DataFrame, keys: pl.DataFrame, price_col: str,
                 qty_name: str, money_name: str, extra: list[str] | None = None) -> pl.DataFrame:
    """MW x overlap hours (fixed to MWh scale 6) and x price (exact), per interval."""
    extra = extra or []
    s = _spread(events, keys, ["mw", price_col, *extra]).with_columns(
        (pl.col("mw") * pl.col("_ov") / 3600.0).cast(MWH).alias(qty_name))
    s = s.with_columns(_mul(pl.col(qty_name), pl.col(price_col).cast(PRICE)).alias(money_name))
    return s.group_by("site_id", "interval_start_s", *extra).agg(
        pl.col(qty_name).sum(), pl.col(money_name).sum())


# ---------------------------------------------------------------- settlement


def build_settlement(energy: pl.DataFrame, rt_prices: pl.DataFrame, contracts: pl.DataFrame,
                     *, hashprice: pl.DataFrame | None = None,
                     pool_fee_fraction: Decimal = Decimal(0),
                     credits: pl.DataFrame | None = None,
                     four_cp_intervals: pl.DataFrame | None = None,
                     four_cp_rate_usd_per_kw_year: Decimal = Decimal(0),
                     four_cp_method: CpMethod = "4CP",
                     day_ahead: pl.DataFrame | None = None,
                     settlement_point: str | None = None,
                     point_prices: pl.DataFrame | None = None,
                     ancillary: pl.DataFrame | None = None) -> pl.DataFrame:
    """Settle each (site, interval) of ``energy``.

    - ``energy``: ``transforms.energy.interval_energy`` output.
    - ``rt_prices``: ``[interval_start_s, price_usd_per_mwh]`` at the site's settlement point
      (filter ``sources`` frames by ``settlement_point`` first), or with a ``site_id`` column
      when sites settle at different points; every interval must be priced.
    - ``contracts``: ``[site_id, start_s, end_s, mw, price_usd_per_mwh]`` (schemas.site
      ContractBlock fields); blocks may overlap (they add).
    - ``hashprice``: ``[start_s, hashprice_usd_per_ph_day]``; the latest at or before the
      interval start applies. Required when any interval has mining work.
    - ``pool_fee_fraction``: the pool's fee, in [0, 1), deducted from every interval's gross
      mining revenue.
    - ``credits``: ``[site_id, start_s, end_s, kind ('dr' | 'ancillary'), mw,
      price_usd_per_mw_h]``: credited demand-response / ancillary events.
    - ``four_cp_intervals``: ``[interval_start_s]`` of the coincident-peak intervals of
      ``four_cp_method`` (``transforms.four_cp``); one outside the method's months is an
      error.
    - ``contracts`` may carry ``settlement_point`` (null: the site's own point); a block at
      another point (a hub) carries the basis, which needs ``settlement_point`` (the load
      zone the sites settle at) and ``point_prices``
      (``[settlement_point, interval_start_s, price_usd_per_mwh]``, RT, of those points).
    - ``day_ahead``: ``transforms.positions.DAY_AHEAD_COLUMNS``, hourly DAM trades.
    - ``ancillary``: ``transforms.ancillary.by_interval`` output
      (``[site_id, interval_start_s, capacity_usd, failure_usd]``, cents).

    Returns ``COLUMNS["settlement"]``; money per the module docstring.
    """
    _need(energy, ["site_id", "interval_start_s", "ai_mwh", "mining_mwh", "overhead_mwh",
                   "poi_mwh", "hashrate_ph_days"], "build_settlement(energy)")
    _need(rt_prices, ["interval_start_s", "price_usd_per_mwh"], "build_settlement(rt_prices)")
    _need(contracts, ["site_id", "start_s", "end_s", "mw", "price_usd_per_mwh"],
          "build_settlement(contracts)")
    price_keys = ["site_id", "interval_start_s"] if "site_id" in rt_prices.columns \
        else ["interval_start_s"]
    if rt_prices.select(price_keys).is_duplicated().any():
        raise SettlementInputError(f"build_settlement(rt_prices): duplicate {price_keys}; "
                                   "filter to one settlement point per site")
    keys = energy.select("site_id", "interval_start_s")

    reconciled = pl.col("reconciled") if "reconciled" in energy.columns \
        else pl.lit(None, dtype=pl.Boolean)
    poi_gap_s = pl.col("poi_missing_s") if "poi_missing_s" in energy.columns \
        else pl.lit(None, dtype=pl.Float64)
    base = energy.select(
        "site_id", "interval_start_s",
        *(pl.col(c).cast(MWH) for c in ["ai_mwh", "mining_mwh", "overhead_mwh", "poi_mwh"]),
        pl.col("hashrate_ph_days").cast(PH_DAYS),
        reconciled.alias("energy_reconciled"),
        pl.when(pl.col("poi_mwh").is_null())
        .then(pl.format("POI meter gap: {} s of the interval without a reading, poi_mwh "
                        "unknown (not settled as zero)",
                        poi_gap_s.cast(pl.Int64).cast(pl.String).fill_null("?")))
        .alias("held_reason"),
    ).join(rt_prices.select(*price_keys,
                            pl.col("price_usd_per_mwh").cast(PRICE)
                            .alias("rt_price_usd_per_mwh")),
           on=price_keys, how="left")
    unpriced = base.filter(pl.col("rt_price_usd_per_mwh").is_null())
    if unpriced.height:
        raise SettlementInputError(
            f"build_settlement: no RT price for {unpriced.height} interval(s), first "
            f"interval_start_s={unpriced['interval_start_s'].min()!r}")

    base = _join_positions(base, keys, contracts, day_ahead, rt_prices, settlement_point,
                           point_prices)

    base = _join_hashprice(base, hashprice, pool_fee_fraction)
    base = _join_credits(base, keys, credits)
    base = _join_ancillary(base, ancillary)
    base = _join_four_cp(base, four_cp_intervals, four_cp_rate_usd_per_kw_year,
                         four_cp_method)

    net = pl.col("position_mwh") - pl.col("poi_mwh")
    zero = pl.lit(Decimal(0), dtype=MWH)
    out = base.with_columns(
        # Null (held) when poi_mwh is: when/then/otherwise would turn it into a zero.
        pl.when(net > 0).then(net).when(net.is_not_null()).then(zero).cast(MWH)
        .alias("sell_back_mwh"),
        pl.when(net < 0).then(-net).when(net.is_not_null()).then(zero).cast(MWH)
        .alias("purchase_mwh"),
    ).with_columns(
        _cents(-pl.col("_fwd")).alias("forward_usd"),
        _cents(pl.col("_da")).alias("day_ahead_usd"),
        _cents(pl.col("_basis")).alias("basis_usd"),
        _cents(_mul(pl.col("sell_back_mwh"), pl.col("rt_price_usd_per_mwh")))
        .alias("rt_sell_back_usd"),
        _cents(-_mul(pl.col("purchase_mwh"), pl.col("rt_price_usd_per_mwh")))
        .alias("rt_purchase_usd"),
        _cents(_gross_mining() * (1 - pl.col("pool_fee_fraction")).cast(MINING))
        .alias("mining_revenue_usd"),
        _cents(pl.col("_dr")).alias("dr_credit_usd"),
        _cents(pl.col("_anc") + pl.col("_anc_cap")).alias("ancillary_credit_usd"),
        _cents(-pl.col("_anc_fail")).alias("ancillary_failure_usd"),
        _cents(-pl.col("_4cp")).alias("four_cp_usd"),
    )
    # sum_horizontal skips nulls: a held interval's net must stay null, not a partial sum.
    out = out.with_columns(
        pl.col("held_reason").is_null().alias("settled"),
        pl.when(pl.col("held_reason").is_null()).then(pl.sum_horizontal(COMPONENTS))
        .cast(CENTS).alias("net_usd"),
        (_cents(_gross_mining()) - pl.col("mining_revenue_usd")).cast(CENTS)
        .alias("mining_pool_fee_usd"))
    return out.sort("site_id", "interval_start_s").select(list(COLUMNS["settlement"]))


def _gross_mining() -> pl.Expr:
    """PH-days x gross hashprice, exact."""
    return pl.col("hashrate_ph_days").cast(MINING) * pl.col("hashprice_usd_per_ph_day").cast(MINING)


def _join_hashprice(base: pl.DataFrame, hashprice: pl.DataFrame | None,
                    pool_fee_fraction: Decimal) -> pl.DataFrame:
    if not Decimal(0) <= pool_fee_fraction < Decimal(1):
        raise SettlementInputError(
            f"build_settlement: pool_fee_fraction must be in [0, 1), got {pool_fee_fraction}")
    base = base.with_columns(pl.lit(pool_fee_fraction, dtype=PRICE).alias("pool_fee_fraction"))
    if hashprice is None:
        if base.filter(pl.col("hashrate_ph_days") > 0).height:
            raise SettlementInputError("build_settlement: mining work but no hashprice frame")
        return base.with_columns(pl.lit(Decimal(0), dtype=PRICE)
                                 .alias("hashprice_usd_per_ph_day"))
    _need(hashprice, ["start_s", "hashprice_usd_per_ph_day"], "build_settlement(hashprice)")
    hp = hashprice.select(pl.col("start_s").cast(pl.Int64),
                          pl.col("hashprice_usd_per_ph_day").cast(PRICE)).sort("start_s")
    j = base.sort("interval_start_s").join_asof(hp, left_on="interval_start_s",
                                                right_on="start_s", strategy="backward")
    orphan = j.filter(pl.col("hashprice_usd_per_ph_day").is_null()
                      & (pl.col("hashrate_ph_days") > 0))
    if orphan.height:
        raise SettlementInputError(
            "build_settlement: no hashprice at or before interval_start_s="
            f"{orphan['interval_start_s'].min()!r}")
    return j.drop("start_s").with_columns(pl.col("hashprice_usd_per_ph_day")
                                          .fill_null(Decimal(0)))


def _join_credits(base: pl.DataFrame, keys: pl.DataFrame,
                  credits: pl.DataFrame | None) -> pl.DataFrame:
    zero = pl.lit(Decimal(0), dtype=EXACT)
    if credits is None or credits.height == 0:
        return base.with_columns(zero.alias("_dr"), zero.alias("_anc"))
    _need(credits, ["site_id", "start_s", "end_s", "kind", "mw", "price_usd_per_mw_h"],
          "build_settlement(credits)")
    bad = credits.filter(~pl.col("kind").is_in(["dr", "ancillary"]))
    if bad.height:
        raise SettlementInputError(f"build_settlement(credits): kind must be 'dr' or "
                                   f"'ancillary', got {bad['kind'][0]!r}")
    c = _block_money(credits, keys, "price_usd_per_mw_h", "_mwh", "_usd", extra=["kind"])
    wide = c.group_by("site_id", "interval_start_s").agg(
        pl.col("_usd").filter(pl.col("kind") == "dr").sum().alias("_dr"),
        pl.col("_usd").filter(pl.col("kind") == "ancillary").sum().alias("_anc"))
    return base.join(wide, on=["site_id", "interval_start_s"], how="left").with_columns(
        pl.col("_dr").fill_null(Decimal(0)).cast(EXACT),
        pl.col("_anc").fill_null(Decimal(0)).cast(EXACT))


def _join_positions(base: pl.DataFrame, keys: pl.DataFrame, contracts: pl.DataFrame,
                    day_ahead: pl.DataFrame | None, rt_prices: pl.DataFrame,
                    settlement_point: str | None,
                    point_prices: pl.DataFrame | None) -> pl.DataFrame:
    """Forward and day-ahead MWh and money per interval, and the basis of positions held at
    other settlement points (``transforms.positions``)."""
    own = settlement_point or ""
    c = contracts if "settlement_point" in contracts.columns \
        else contracts.with_columns(pl.lit(None, dtype=pl.String).alias("settlement_point"))
    c = c.with_columns(pl.col("settlement_point").fill_null(own))
    fwd = _block_money(c, keys, "price_usd_per_mwh", "mwh", "_fwd", extra=["settlement_point"])
    held = [fwd.select("site_id", "interval_start_s", "settlement_point", "mwh")]
    out = base.join(
        fwd.group_by("site_id", "interval_start_s").agg(
            pl.col("mwh").sum().alias("forward_mwh"), pl.col("_fwd").sum()),
        on=["site_id", "interval_start_s"], how="left")
    if day_ahead is not None and day_ahead.height:
        try:
            da = pos.day_ahead_by_interval(day_ahead, keys)
        except pos.PositionInputError as exc:
            raise SettlementInputError(f"build_settlement(day_ahead): {exc}") from exc
        held.append(da.select("site_id", "interval_start_s", "settlement_point", "mwh"))
        out = out.join(da.group_by("site_id", "interval_start_s").agg(
            pl.col("mwh").sum().alias("day_ahead_mwh"), pl.col("usd").sum().alias("_da")),
            on=["site_id", "interval_start_s"], how="left")
    else:
        out = out.with_columns(pl.lit(None, dtype=MWH).alias("day_ahead_mwh"),
                               pl.lit(None, dtype=EXACT).alias("_da"))
    out = out.with_columns(
        pl.col("forward_mwh").fill_null(Decimal(0)).cast(MWH),
        pl.col("_fwd").fill_null(Decimal(0)).cast(EXACT),
        pl.col("day_ahead_mwh").fill_null(Decimal(0)).cast(MWH),
        pl.col("_da").fill_null(Decimal(0)).cast(EXACT),
    ).with_columns((pl.col("forward_mwh") + pl.col("day_ahead_mwh")).cast(MWH)
                   .alias("position_mwh"))
    positions = pl.concat(held).with_columns(pl.col("mwh").cast(MWH))
    away = positions.filter(pl.col("settlement_point") != own, pl.col("mwh") != 0)
    if away.height == 0:
        return out.with_columns(pl.lit(Decimal(0), dtype=EXACT).alias("_basis"))
    if settlement_point is None:
        raise SettlementInputError(
            f"build_settlement: positions at {sorted(set(away['settlement_point']))} need "
            "settlement_point (the load zone) to settle their basis")
    zone = rt_prices.select(pl.lit(settlement_point).alias("settlement_point"),
                            pl.col("interval_start_s").cast(pl.Int64),
                            pl.col("price_usd_per_mwh").cast(PRICE)).unique()
    others = [] if point_prices is None else [point_prices.select(
        "settlement_point", pl.col("interval_start_s").cast(pl.Int64),
        pl.col("price_usd_per_mwh").cast(PRICE)).filter(
            pl.col("settlement_point") != settlement_point)]
    sites = keys.select("site_id").unique().with_columns(
        pl.lit(settlement_point).alias("site_point"))
    try:
        basis = pos.basis_by_interval(away, sites, pl.concat([zone, *others]))
    except pos.PositionInputError as exc:
        raise SettlementInputError(f"build_settlement: {exc}") from exc
    return out.join(basis.rename({"basis_usd": "_basis"}), on=["site_id", "interval_start_s"],
                    how="left").with_columns(pl.col("_basis").fill_null(Decimal(0))
                                             .cast(EXACT))


def _join_ancillary(base: pl.DataFrame, ancillary: pl.DataFrame | None) -> pl.DataFrame:
    zero = pl.lit(Decimal(0), dtype=EXACT)
    if ancillary is None or ancillary.height == 0:
        return base.with_columns(zero.alias("_anc_cap"), zero.alias("_anc_fail"))
    _need(ancillary, ["site_id", "interval_start_s", "capacity_usd", "failure_usd"],
          "build_settlement(ancillary)")
    a = ancillary.group_by("site_id", "interval_start_s").agg(
        pl.col("capacity_usd").cast(EXACT).sum().alias("_anc_cap"),
        pl.col("failure_usd").cast(EXACT).sum().alias("_anc_fail"))
    return base.join(a, on=["site_id", "interval_start_s"], how="left").with_columns(
        pl.col("_anc_cap").fill_null(Decimal(0)).cast(EXACT),
        pl.col("_anc_fail").fill_null(Decimal(0)).cast(EXACT))


def _join_four_cp(base: pl.DataFrame, intervals: pl.DataFrame | None,
                  rate: Decimal, method: CpMethod) -> pl.DataFrame:
    if intervals is None or intervals.height == 0:
        return base.with_columns(pl.lit(Decimal(0), dtype=EXACT).alias("_4cp"))
    _need(intervals, ["interval_start_s"], "build_settlement(four_cp_intervals)")
    try:
        check_cp_months(intervals, method)
    except ValueError as exc:
        raise SettlementInputError(f"build_settlement(four_cp_intervals): {exc}") from exc
    cp = intervals.select(pl.col("interval_start_s").cast(pl.Int64)).unique().with_columns(
        pl.lit(True).alias("_is_cp"))
    # MWh in 15 min x 4 = MW average, x 1000 = kW; the tag is the mean of n peaks.
    # 12CP: 4000/12 is not a finite decimal; 12 places keep the error under 1e-9 USD/MWh.
    per_mwh = pl.lit((rate * 4000 / intervals_per_tag(method)).quantize(Decimal("1e-12")),
                     dtype=EXACT)
    return base.join(cp, on="interval_start_s", how="left").with_columns(
        pl.when(pl.col("_is_cp")).then(_mul(pl.col("poi_mwh"), per_mwh))
        .otherwise(pl.lit(Decimal(0), dtype=EXACT)).alias("_4cp")).drop("_is_cp")
