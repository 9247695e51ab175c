"""Positions the site holds before real time, per 15-minute settlement interval.

A position is energy bought (+) or sold (-) ahead at a settlement point: forward blocks
(``schemas.site.ContractBlock``, usually at a hub) and hourly day-ahead trades
(``schemas.market_positions.DayAheadPosition``). ERCOT settles, per interval:

- Day-ahead: an energy bid cleared in the DAM is charged MW x DA SPP of the hour, an offer
  paid the same (Nodal Protocols 4.6.2.1 Day-Ahead Energy Payment, 4.6.2.2 Day-Ahead Energy
  Charge); a quarter of the hour's MWh falls in each 15-minute interval.
- Real-time: the Load's metered energy at its Load Zone less what it holds there settles at
  the Load Zone's RT SPP (6.6.3.2, Real-Time Energy Imbalance Payment or Charge at a Load
  Zone); a position held at a Hub settles at the Hub's RT SPP (6.6.3.3, ... at a Hub). So a
  hub position of q MWh that serves load in the zone is worth
  ``q x (RT_hub - RT_zone)`` on top of the zone imbalance: that is the **basis**, its own
  column, cash to the site (+ when the hub price is above the zone's).

Pure: frames in, frames out. Quantities are fixed to ``Decimal(38, 6)`` MWh once; products
are exact (``transforms.settlement`` rounds to cents).
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import polars as pl

from streams.errors import TerminalError
from transforms.calendar import INTERVAL_S

MWH = pl.Decimal(38, 6)
PRICE = pl.Decimal(38, 6)
EXACT = pl.Decimal(38, 12)

DAY_AHEAD_COLUMNS = ["site_id", "hour_start_s", "settlement_point", "mw", "price_usd_per_mwh"]
"""Day-ahead trades as ``build_settlement`` takes them (``DayAheadPosition`` + site id)."""


class PositionInputError(TerminalError, ValueError):
    """A positions input is missing a column or holds a malformed value."""


def _need(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PositionInputError(f"{what}: missing column(s) {missing}; has {frame.columns}")


def _mul(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return a.cast(EXACT) * b.cast(EXACT)


def read_day_ahead_csv(path: Path | str, site_id: str) -> pl.DataFrame:
    """Day-ahead trades of one site from a CSV with header
    ``hour_start_s,settlement_point,mw,price_usd_per_mwh`` (UTC epoch of the hour start;
    MW bought + / sold -; DA SPP $/MWh). Prices are read as exact decimals."""
    p = Path(path)
    rows: list[tuple[int, str, float, Decimal]] = []
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = set(DAY_AHEAD_COLUMNS[1:])
        if not need <= set(reader.fieldnames or []):
            raise PositionInputError(f"{p}: header must have {sorted(need)}, "
                                     f"got {reader.fieldnames}")
        for n, r in enumerate(reader, start=2):
            try:
                start = int(float(r["hour_start_s"]))
                if start % 3600:
                    raise ValueError(f"hour_start_s {start} is not on an hour")
                rows.append((start, r["settlement_point"].strip(), float(r["mw"]),
                             Decimal(r["price_usd_per_mwh"].strip())))
            except (ValueError, ArithmeticError) as exc:
                raise PositionInputError(f"{p}, line {n}: {exc}") from exc
    return pl.DataFrame(
        {"site_id": [site_id] * len(rows), "hour_start_s": [r[0] for r in rows],
         "settlement_point": [r[1] for r in rows], "mw": [r[2] for r in rows],
         "price_usd_per_mwh": [r[3] for r in rows]},
        schema={"site_id": pl.String, "hour_start_s": pl.Int64, "settlement_point": pl.String,
                "mw": pl.Float64, "price_usd_per_mwh": PRICE})


def day_ahead_by_interval(day_ahead: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """``[site_id, interval_start_s, settlement_point, mwh, usd]`` of the trades: each hour's
    MW x 0.25 h in each of its four intervals (only intervals in ``keys``); ``usd`` is the
    exact DA cash to the site, ``-(mwh x DA price)`` (a sale, mw < 0, is a receipt)."""
    _need(day_ahead, DAY_AHEAD_COLUMNS, "day_ahead")
    quarters = pl.DataFrame({"_q": [0, 1, 2, 3]}, schema={"_q": pl.Int64})
    spread = day_ahead.join(quarters, how="cross").with_columns(
        (pl.col("hour_start_s").cast(pl.Int64) + pl.col("_q") * INTERVAL_S)
        .alias("interval_start_s"),
        (pl.col("mw") * (INTERVAL_S / 3600.0)).cast(MWH).alias("mwh"))
    spread = spread.join(keys, on=["site_id", "interval_start_s"], how="semi")
    return spread.group_by("site_id", "interval_start_s", "settlement_point").agg(
        pl.col("mwh").sum().cast(MWH),
        (-_mul(pl.col("mwh"), pl.col("price_usd_per_mwh"))).sum().alias("usd"))


def basis_by_interval(positions: pl.DataFrame, site_points: pl.DataFrame,
                      rt_prices: pl.DataFrame) -> pl.DataFrame:
    """``[site_id, interval_start_s, basis_usd (exact)]``: for each position held at a point
    other than the site's load zone, ``mwh x (RT_point - RT_zone)``.

    - ``positions``: ``[site_id, interval_start_s, settlement_point, mwh]``;
    - ``site_points``: ``[site_id, site_point]``, the load zone each site settles at;
    - ``rt_prices``: ``[settlement_point, interval_start_s, price_usd_per_mwh]`` of every
      point involved. A position at a point with no RT price for its interval is an error:
      the basis would otherwise be silently zero.
    """
    _need(positions, ["site_id", "interval_start_s", "settlement_point", "mwh"], "positions")
    _need(rt_prices, ["settlement_point", "interval_start_s", "price_usd_per_mwh"],
          "rt_prices")
    away = positions.join(site_points, on="site_id", how="left").filter(
        pl.col("settlement_point") != pl.col("site_point"), pl.col("mwh") != 0)
    if away.height == 0:
        return pl.DataFrame(schema={"site_id": pl.String, "interval_start_s": pl.Int64,
                                    "basis_usd": EXACT})
    prices = rt_prices.select(pl.col("settlement_point"),
                              pl.col("interval_start_s").cast(pl.Int64),
                              pl.col("price_usd_per_mwh").cast(PRICE))
    j = away.join(prices, on=["settlement_point", "interval_start_s"], how="left").join(
        prices.rename({"settlement_point": "site_point", "price_usd_per_mwh": "_zone"}),
        on=["site_point", "interval_start_s"], how="left")
    unpriced = j.filter(pl.col("price_usd_per_mwh").is_null() | pl.col("_zone").is_null())
    if unpriced.height:
        r = unpriced.row(0, named=True)
        raise PositionInputError(
            f"basis: no RT price at {r['settlement_point']!r} or {r['site_point']!r} for "
            f"interval_start_s={r['interval_start_s']} ({unpriced.height} position(s)); "
            "a hub position needs the hub's RT settlement point price")
    return j.group_by("site_id", "interval_start_s").agg(
        _mul(pl.col("mwh"), pl.col("price_usd_per_mwh") - pl.col("_zone")).sum()
        .alias("basis_usd"))
