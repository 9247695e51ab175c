"""Ancillary services of the site as a Load Resource, money side.

Rules (``docs/settlement.md`` gives the sources and what was verified):

- Capacity: awarded MW x MCPC ($/MW per hour) for every awarded hour, deployed or not
  (Nodal Protocols 4.6.4.1, Day-Ahead Ancillary Service capacity payments; real-time awards
  since RTC+B, 2025-12-05, at the RT MCPC). Rounded to cents per award hour, half-even, then
  split over the hour's four 15-minute intervals so that they add up to the hour's cents.
- Failure to provide: an hour in which the Load Resource could not provide its award (a Load
  Resource can only drop what it is consuming) is charged ``failed MW x MCPC`` of the
  service (6.7.3 Charges for a Failure to Provide, NPRR1149; the price ERCOT uses is the
  higher of the MCPC and a real-time reserve price; only the MCPC is modelled).
- Deployment performance: reduction delivered against the baseline (average load of the
  interval before the deployment), as a fraction of the instructed MW.
- ERS (Nodal Protocols 3.14.3; 16 TAC §25.507): paid per ERS Time Period of a Standard
  Contract Term, ``MW x $/MW-h x hours x availability factor x event performance factor``.

Pure: frames in, frames out; money exact (Decimal), cents half-even.
"""

from __future__ import annotations

import csv
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from streams.errors import TerminalError
from transforms.calendar import INTERVAL_S

MW = pl.Decimal(38, 6)
PRICE = pl.Decimal(38, 6)
EXACT = pl.Decimal(38, 12)
CENTS = pl.Decimal(38, 2)

SERVICES = ("RRS", "ECRS", "NSPIN")
"""Services a Load Resource (not a Controllable Load Resource) carries here."""
SERVICE_ALIASES = {"NONSPIN": "NSPIN", "NON_SPIN": "NSPIN", "NSRS": "NSPIN"}
FAIL_ORDER = {"NSPIN": 0, "ECRS": 1, "RRS": 2}
"""When load falls short of all awards, the shortfall is assigned NSPIN first, then ECRS,
then RRS (an assumption: the protocol computes a failed quantity per service)."""

AWARD_COLUMNS = ["site_id", "service", "market", "hour_start_s", "mw",
                 "clearing_price_usd_per_mw"]
MCPC_COLUMNS = ["market", "service", "interval_start_s", "interval_end_s",
                "mcpc_usd_per_mw_h"]


class AncillaryInputError(TerminalError, ValueError):
    """An award or MCPC input is malformed or an awarded hour has no clearing price."""


def _cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def read_awards_csv(path: Path | str) -> pl.DataFrame:
    """Awards (``schemas.market_positions.AncillaryAward`` fields) from a CSV with header
    ``site_id,service,market,hour_start_s,mw[,clearing_price_usd_per_mw]``; an empty price
    means: take the MCPC of the market and hour."""
    p = Path(path)
    rows: list[tuple[str, str, str, int, Decimal, Decimal | None]] = []
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = set(AWARD_COLUMNS[:-1])
        if not need <= set(reader.fieldnames or []):
            raise AncillaryInputError(f"{p}: header must have {sorted(need)}, "
                                      f"got {reader.fieldnames}")
        for n, r in enumerate(reader, start=2):
            try:
                service = SERVICE_ALIASES.get(r["service"].strip(), r["service"].strip())
                market = r["market"].strip()
                if service not in SERVICES or market not in ("DAM", "RTM"):
                    raise ValueError(f"service {service!r} / market {market!r} not one of "
                                     f"{SERVICES} / ('DAM', 'RTM')")
                start = int(float(r["hour_start_s"]))
                if start % 3600:
                    raise ValueError(f"hour_start_s {start} is not on an hour")
                mw = Decimal(r["mw"].strip())
                if mw < 0:
                    raise ValueError(f"mw {mw} is negative")
                text = (r.get("clearing_price_usd_per_mw") or "").strip()
                rows.append((r["site_id"].strip(), service, market, start, mw,
                             Decimal(text) if text else None))
            except (ValueError, ArithmeticError) as exc:
                raise AncillaryInputError(f"{p}, line {n}: {exc}") from exc
    return pl.DataFrame([list(r) for r in rows], schema={
        "site_id": pl.String, "service": pl.String, "market": pl.String,
        "hour_start_s": pl.Int64, "mw": MW, "clearing_price_usd_per_mw": PRICE}, orient="row")


def hourly_mcpc(mcpc: pl.DataFrame) -> pl.DataFrame:
    """``[market ('DAM'|'RTM'), service, hour_start_s, mcpc_usd_per_mw_h]``: an hourly DAM
    MCPC as is; 15-minute RT MCPCs as the exact mean of the hour's four (a MW held all hour
    earns a quarter hour at each). ``mcpc``: ``MCPC_COLUMNS``, market ``da`` or ``rt``."""
    missing = [c for c in MCPC_COLUMNS if c not in mcpc.columns]
    if missing:
        raise AncillaryInputError(f"mcpc: missing column(s) {missing}")
    m = mcpc.with_columns(
        pl.col("service").replace(SERVICE_ALIASES),
        pl.when(pl.col("market") == "rt").then(pl.lit("RTM")).otherwise(pl.lit("DAM"))
        .alias("market"),
        (pl.col("interval_start_s").cast(pl.Int64) // 3600 * 3600).alias("hour_start_s"),
        ((pl.col("interval_end_s") - pl.col("interval_start_s")) / 3600.0).alias("_h"),
        pl.col("mcpc_usd_per_mw_h").cast(PRICE))
    bad = m.filter(~pl.col("_h").is_in([0.25, 1.0]))
    if bad.height:
        raise AncillaryInputError("mcpc: intervals must be 15 minutes or one hour")
    weight = pl.when(pl.col("_h") == 1.0).then(pl.lit(Decimal(1), dtype=PRICE)).otherwise(
        pl.lit(Decimal("0.25"), dtype=PRICE))
    return m.group_by("market", "service", "hour_start_s").agg(
        (pl.col("mcpc_usd_per_mw_h").cast(EXACT) * weight.cast(EXACT)).sum()
        .alias("mcpc_usd_per_mw_h")).sort("market", "service", "hour_start_s")


def capacity_by_hour(awards: pl.DataFrame, mcpc: pl.DataFrame | None) -> pl.DataFrame:
    """Awards with ``mcpc_usd_per_mw_h`` (the award's own clearing price, else the MCPC of
    its market and hour) and ``capacity_usd`` = MW x MCPC, cents half-even, per award hour.

    ``mcpc``: ``hourly_mcpc`` output, or None when every award carries its price. An award
    with no price is an error, never a zero."""
    missing = [c for c in AWARD_COLUMNS if c not in awards.columns]
    if missing:
        raise AncillaryInputError(f"awards: missing column(s) {missing}")
    a = awards.with_columns(pl.col("mw").cast(MW),
                            pl.col("clearing_price_usd_per_mw").cast(PRICE))
    if mcpc is not None:
        a = a.join(mcpc, on=["market", "service", "hour_start_s"], how="left")
    else:
        a = a.with_columns(pl.lit(None, dtype=EXACT).alias("mcpc_usd_per_mw_h"))
    a = a.with_columns(pl.coalesce(pl.col("clearing_price_usd_per_mw").cast(EXACT),
                                   pl.col("mcpc_usd_per_mw_h").cast(EXACT))
                       .alias("mcpc_usd_per_mw_h"))
    orphan = a.filter(pl.col("mcpc_usd_per_mw_h").is_null())
    if orphan.height:
        r = orphan.row(0, named=True)
        raise AncillaryInputError(
            f"awards: no clearing price for {orphan.height} award hour(s), first "
            f"{r['service']} {r['market']} hour_start_s={r['hour_start_s']}")
    return a.with_columns(
        (pl.col("mw").cast(EXACT) * pl.col("mcpc_usd_per_mw_h")).round(2).cast(CENTS)
        .alias("capacity_usd")).drop("clearing_price_usd_per_mw").sort(
        "site_id", "hour_start_s", "service")


def failure_by_hour(capacity: pl.DataFrame, provided: pl.DataFrame) -> pl.DataFrame:
    """Per award hour: ``failed_mw`` and ``failure_usd`` = failed MW x MCPC (cents, paid, a
    positive number here; settlement books it negative).

    ``provided``: ``[site_id, hour_start_s, provided_mw]``, the load the Load Resource could
    drop in the hour (its average consumption). An hour without a row provided nothing is
    *not* assumed: it is an error, since the charge would be made up."""
    for c in ("site_id", "hour_start_s", "provided_mw"):
        if c not in provided.columns:
            raise AncillaryInputError(f"provided: missing column {c!r}")
    j = capacity.join(provided.select("site_id", pl.col("hour_start_s").cast(pl.Int64),
                                      pl.col("provided_mw").cast(MW)),
                      on=["site_id", "hour_start_s"], how="left")
    orphan = j.filter(pl.col("provided_mw").is_null())
    if orphan.height:
        raise AncillaryInputError(
            f"provided: no load for {orphan.height} award hour(s), first hour_start_s="
            f"{orphan['hour_start_s'].min()!r}")
    j = j.with_columns(pl.col("service").replace_strict(FAIL_ORDER, default=9).alias("_o")
                       ).sort("site_id", "hour_start_s", "_o", descending=[False, False, True])
    # Load covers RRS first, NSPIN last: each service gets what is left after those before.
    j = j.with_columns(pl.col("mw").cum_sum().over("site_id", "hour_start_s").alias("_cum"))
    before = pl.col("_cum") - pl.col("mw")
    covered = (pl.col("provided_mw") - before).clip(lower_bound=Decimal(0))
    j = j.with_columns(pl.when(covered >= pl.col("mw")).then(pl.lit(Decimal(0)))
                       .otherwise(pl.col("mw") - covered).cast(MW).alias("failed_mw"))
    return j.with_columns(
        (pl.col("failed_mw").cast(EXACT) * pl.col("mcpc_usd_per_mw_h")).round(2).cast(CENTS)
        .alias("failure_usd")).drop("_o", "_cum")


def by_interval(hourly: pl.DataFrame, keys: pl.DataFrame | None = None) -> pl.DataFrame:
    """``[site_id, interval_start_s, capacity_usd, failure_usd]``: each hour's cents split
    over its four intervals, the remainder cents to the first ones, so that the intervals
    add up to the hour exactly. ``keys`` (``[site_id, interval_start_s]``) keeps only those
    intervals."""
    h = hourly if "failure_usd" in hourly.columns else hourly.with_columns(
        pl.lit(Decimal(0), dtype=CENTS).alias("failure_usd"))
    h = h.group_by("site_id", "hour_start_s").agg(
        (pl.col("capacity_usd").sum() * 100).cast(pl.Int64).alias("_cap"),
        (pl.col("failure_usd").sum() * 100).cast(pl.Int64).alias("_fail"))
    q = pl.DataFrame({"_q": [0, 1, 2, 3]}, schema={"_q": pl.Int64})

    def split(col: str) -> pl.Expr:
        share = pl.col(col) // 4 + (pl.col("_q") < pl.col(col) % 4).cast(pl.Int64)
        return (share.cast(EXACT) * pl.lit(Decimal("0.01"), dtype=EXACT)).cast(CENTS)

    out = h.join(q, how="cross").select(
        "site_id", (pl.col("hour_start_s") + pl.col("_q") * INTERVAL_S).alias("interval_start_s"),
        split("_cap").alias("capacity_usd"), split("_fail").alias("failure_usd"))
    if keys is not None:
        out = out.join(keys, on=["site_id", "interval_start_s"], how="semi")
    return out.sort("site_id", "interval_start_s")


def provided_by_hour(energy: pl.DataFrame) -> pl.DataFrame:
    """``[site_id, hour_start_s, provided_mw]`` from interval energy: the mining load (the
    Load Resource) averaged over the hour's intervals present, MW."""
    return energy.group_by("site_id", (pl.col("interval_start_s") // 3600 * 3600)
                           .alias("hour_start_s")).agg(
        (pl.col("mining_mwh").mean() * 4).alias("provided_mw")).sort("site_id", "hour_start_s")


def deployment_performance(deployments: pl.DataFrame, energy: pl.DataFrame) -> pl.DataFrame:
    """Per deployment ``[site_id, event_id, start_s, end_s, instructed_mw]``: the baseline
    (average mining MW of the interval before ``start_s``), the average load during it, the
    reduction delivered and ``performance`` = delivered / instructed (null if not
    measurable: no baseline interval or no load data)."""
    e = energy.select("site_id", pl.col("interval_start_s").cast(pl.Int64),
                      (pl.col("mining_mwh") * 4).alias("_mw"))
    d = deployments.with_columns(
        (pl.col("start_s").cast(pl.Int64) // INTERVAL_S * INTERVAL_S - INTERVAL_S)
        .alias("_base_start"))
    base = d.join(e.rename({"interval_start_s": "_base_start", "_mw": "baseline_mw"}),
                  on=["site_id", "_base_start"], how="left")
    during = d.join(e, on="site_id").filter(
        pl.col("interval_start_s") >= pl.col("start_s") // INTERVAL_S * INTERVAL_S,
        pl.col("interval_start_s") < pl.col("end_s")).group_by("site_id", "event_id").agg(
        pl.col("_mw").mean().alias("deployed_mw"))
    out = base.join(during, on=["site_id", "event_id"], how="left").with_columns(
        (pl.col("baseline_mw") - pl.col("deployed_mw")).alias("delivered_mw"))
    return out.with_columns(
        (pl.col("delivered_mw") / pl.col("instructed_mw")).alias("performance")).drop(
        "_base_start")


def ers_time_period_hours(first_day: date, last_day: date, from_hour: int, to_hour: int,
                          *, weekdays_only: bool, holidays: frozenset[date] = frozenset(),
                          tz: str = "America/Chicago") -> int:
    """Hours of one ERS Time Period in a Standard Contract Term: local hours
    ``[from_hour, to_hour)`` of each day, weekdays only for business-hours periods (ERCOT's
    ERS Technical Requirements define the periods per term; holidays are an input). Counts
    real elapsed hours, so a DST day counts what the clock lived."""
    zone = ZoneInfo(tz)
    hours = 0
    d = first_day
    while d <= last_day:
        if not (weekdays_only and (d.weekday() >= 5 or d in holidays)):
            start = datetime.combine(d, time(from_hour), zone)
            end = datetime.combine(d, time(0), zone) + timedelta(days=1) if to_hour == 24 \
                else datetime.combine(d, time(to_hour), zone)
            hours += round((end.timestamp() - start.timestamp()) / 3600)
        d += timedelta(days=1)
    return hours


def ers_payment(mw: Decimal, price_usd_per_mw_h: Decimal, hours: int, *,
                availability_factor: Decimal, event_performance_factor: Decimal = Decimal(1)
                ) -> Decimal:
    """ERS capacity payment for one Time Period of a term, USD cents half-even:
    ``MW x price x hours x min(AF, 1) x EPF`` (availability factor: share of the obligated
    hours the load was available; event performance factor of the term's deployments, 0..1;
    3.14.3 and 8.1.3.1, see docs)."""
    for name, f in (("availability_factor", availability_factor),
                    ("event_performance_factor", event_performance_factor)):
        if f < 0 or f > 1:
            raise AncillaryInputError(f"ers_payment: {name} must be in [0, 1], got {f}")
    return _cents(mw * price_usd_per_mw_h * hours * min(availability_factor, Decimal(1))
                  * event_performance_factor)
