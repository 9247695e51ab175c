"""Great Expectations quality gates, one suite per mart, run on the pandas path.

GX 1.24's DuckDB SQL path reports every expectation as failed (shared/notes/stack-facts.md
section 3), so frames go polars -> pandas. Checks GX cannot express directly are computed
exactly in polars first as helper columns (prefixed ``_gate_``) that GX then bounds:

- ``_gate_gap_before``: missing keys before each row within its site (completeness), must be 0;
  for a site's first row it counts the keys missing since the period's start, so a day whose
  first intervals are absent is not complete (``_gate_gap_after``: after its last row, when
  the period's end is known);
- ``_gate_sign_<col>``: a real-time money column whose sign follows the price (a purchase at
  a negative price is a receipt), must be true;
- ``_gate_on_grid``: key on the 15-minute (or hourly) grid, must be true;
- ``_gate_sum_residual``: total minus the sum of its components (exact decimals for money;
  float for carbon), must be 0 (money) or within half a gram (carbon).

An expectation that raised inside GX (``exception_info.raised_exception``) is a broken gate,
not bad data: ``run_gate`` raises :class:`GateError` instead of returning a failed result.
GX is imported lazily (about 4 s).

Row-level and partition-level expectations: a null, an out-of-range value, a false
``reconciled`` / ``settled`` flag, a wrong sign or a sum that does not add up belongs to one
interval (or hour); ``row_reasons`` finds those rows in polars and names why. When every
failed expectation is row-level and those rows explain it, the result is ``publishable``:
the build is published with those rows *provisional* (``GateResult.provisional``) instead of
holding back the whole partition for one bad interval. Row count, unique keys, the
15-minute grid, completeness (a missing interval) and missing columns stay partition-level:
they hold the partition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from streams.errors import TerminalError
from transforms.calendar import MARKET_TZ
from transforms.settlement import COMPONENTS


class GateError(TerminalError, RuntimeError):
    """The gate itself failed to run (an expectation raised); the data was not judged."""


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    target: str
    success: bool
    unexpected_count: int | None
    detail: str
    row_level: bool = False
    """A failure belongs to single rows (an interval or hour), not to the partition."""


@dataclass(frozen=True)
class ProvisionalRow:
    """A row published provisionally: it failed a row-level expectation."""

    site_id: str
    key_start_s: int
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class GateResult:
    mart: str
    success: bool
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    provisional: tuple[ProvisionalRow, ...] = ()
    """Rows that failed a row-level expectation, with why (empty when ``success``)."""

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def publishable(self) -> bool:
        """Passed, or failed only row-level expectations that ``provisional`` explains: the
        build may be published with those rows marked provisional."""
        if self.success:
            return True
        return bool(self.provisional) and all(o.row_level for o in self.failures)

    def report(self) -> str:
        head = (f"gate {self.mart}: {'PASS' if self.success else 'FAIL'} "
                f"({len(self.outcomes) - len(self.failures)}/{len(self.outcomes)} expectations,"
                f" {self.rows} rows)")
        if not self.success and self.publishable:
            head += f"; published with {len(self.provisional)} row(s) provisional"
        lines = [head]
        for o in self.outcomes:
            mark = "ok  " if o.success else "FAIL"
            n = "" if o.unexpected_count is None else f" unexpected={o.unexpected_count}"
            lines.append(f"  {mark} {o.expectation}({o.target}){n} {o.detail}".rstrip())
        lines += [f"  provisional {r.site_id} {r.key_start_s}: {r.reason}"
                  for r in self.provisional]
        return "\n".join(lines)


@dataclass(frozen=True)
class MartSpec:
    keys: list[str]
    time_key: str
    step_s: int
    not_null: list[str]
    ranges: dict[str, tuple[float | None, float | None]]
    must_be_true: list[str] = field(default_factory=list)
    sum_total: str | None = None
    sum_parts: list[str] = field(default_factory=list)
    sum_tolerance: float = 0.0
    price_col: str | None = None
    price_signed: dict[str, int] = field(default_factory=dict)
    """Money column -> +1 (its sign is the price's: a sale) or -1 (opposite: a purchase)."""


_MWH_15 = 2500.0  # 10 GW for 15 minutes: far above any one site, catches unit slips (Wh as MWh)
_PRICE = (-10000.0, 18002.0)  # schemas.market_bounds.widest(): any date, DAM/RTM/SCED

SPECS: dict[str, MartSpec] = {
    "interval_energy": MartSpec(
        keys=["site_id", "interval_start_s"], time_key="interval_start_s", step_s=900,
        not_null=["site_id", "interval_start_s", "ai_mwh", "mining_mwh", "overhead_mwh",
                  "total_mwh", "poi_mwh", "covered_s", "missing_s"],
        ranges={"ai_mwh": (0.0, _MWH_15), "mining_mwh": (0.0, _MWH_15),
                "overhead_mwh": (0.0, _MWH_15), "total_mwh": (0.0, _MWH_15),
                "poi_mwh": (0.0, _MWH_15), "covered_s": (0.0, 900.0),
                "missing_s": (0.0, 900.0), "hashrate_ph_days": (0.0, None)},
        must_be_true=["reconciled", "poi_complete"],
        sum_total="total_mwh", sum_parts=["ai_mwh", "mining_mwh", "overhead_mwh"],
        sum_tolerance=1e-6,
    ),
    "settlement": MartSpec(
        keys=["site_id", "interval_start_s"], time_key="interval_start_s", step_s=900,
        not_null=["site_id", "interval_start_s", "poi_mwh", "rt_price_usd_per_mwh", *COMPONENTS,
                  "net_usd"],
        ranges={"poi_mwh": (0.0, _MWH_15), "forward_mwh": (0.0, _MWH_15),
                "sell_back_mwh": (0.0, _MWH_15), "purchase_mwh": (0.0, _MWH_15),
                "rt_price_usd_per_mwh": _PRICE, "hashprice_usd_per_ph_day": (0.0, 100000.0),
                "pool_fee_fraction": (0.0, 1.0), "forward_usd": (None, 0.0),
                "mining_revenue_usd": (0.0, None), "mining_pool_fee_usd": (0.0, None),
                "dr_credit_usd": (0.0, None),
                "ancillary_credit_usd": (0.0, None), "four_cp_usd": (None, 0.0)},
        must_be_true=["settled"],  # a held interval (POI gap) is not a settled day
        sum_total="net_usd", sum_parts=COMPONENTS, sum_tolerance=0.0,
        # Real-time energy settles at the Settlement Point Price, which may be negative
        # (ERCOT Nodal Protocols 6.6.3.2, Real-Time Energy Imbalance Payment or Charge at a
        # Load Zone: imbalance MWh x RT SPP): a purchase at -$12.50/MWh is a receipt, a
        # sell-back at it a payment. Neither has a fixed sign.
        price_col="rt_price_usd_per_mwh",
        price_signed={"rt_sell_back_usd": 1, "rt_purchase_usd": -1},
    ),
    "carbon_hourly": MartSpec(
        keys=["site_id", "hour_start_s"], time_key="hour_start_s", step_s=3600,
        not_null=["site_id", "hour_start_s", "total_mwh", "intensity_g_per_kwh", "location_g",
                  "market_g"],
        ranges={"total_mwh": (0.0, 4 * _MWH_15), "intensity_g_per_kwh": (0.0, 1500.0),
                "location_g": (0.0, None), "market_g": (0.0, None), "cfe_share": (0.0, 1.0),
                "avoided_g": (0.0, None)},
        sum_total="location_g", sum_parts=["ai_location_g", "mining_location_g"],
        sum_tolerance=0.5,
    ),
}


def _midnights_s(ts: int) -> list[int]:
    """UTC and market-local midnights at or before ``ts``: the two ways a day starts here
    (marts are partitioned by UTC date, reports by local date)."""
    utc = datetime.fromtimestamp(ts, UTC)
    local = utc.astimezone(ZoneInfo(MARKET_TZ))
    local_mid = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return [ts - ts % 86_400, int(local_mid.timestamp())]


def period_start_of(first_s: int) -> int:
    """The start a day (or month) that begins at ``first_s`` should have: the latest UTC or
    market-local midnight at or before it. A frame whose first row is after that midnight
    lacks the intervals in between."""
    return max(m for m in _midnights_s(first_s) if m <= first_s)


def _prepare(spec: MartSpec, frame: pl.DataFrame,
             period_s: tuple[int, int] | None = None) -> pl.DataFrame:
    """Add the ``_gate_*`` helper columns and turn decimals into floats for GX.

    ``period_s``: ``[start, end)`` the frame must cover for every site; without it the start
    is inferred per site (``period_start_of`` its first row) and the end is not checked (a
    day still in progress has no rows for its future intervals)."""
    site_keys = [k for k in spec.keys if k != spec.time_key]
    t = pl.col(spec.time_key)
    prev = t.shift(1)
    nxt = t.shift(-1)
    first = t.min()
    if site_keys:
        prev, nxt, first = prev.over(site_keys), nxt.over(site_keys), first.over(site_keys)
    if period_s is not None:
        start: pl.Expr = pl.lit(period_s[0], dtype=pl.Int64)
    else:
        start = first.map_elements(period_start_of, return_dtype=pl.Int64)
    # The first row's "previous key" is one step before the period's start.
    gap = ((t - prev.fill_null(start - spec.step_s)) // spec.step_s - 1).clip(lower_bound=0)
    f = frame.sort([*site_keys, spec.time_key]).with_columns(
        gap.alias("_gate_gap_before"), (t % spec.step_s == 0).alias("_gate_on_grid"))
    if period_s is not None:
        after = ((nxt.fill_null(period_s[1]) - t) // spec.step_s - 1).clip(lower_bound=0)
        f = f.with_columns(after.alias("_gate_gap_after"))
    if spec.sum_total is not None:
        parts = pl.sum_horizontal(spec.sum_parts)
        f = f.with_columns((pl.col(spec.sum_total) - parts).cast(pl.Float64)
                           .alias("_gate_sum_residual"))
    if spec.price_col is not None and spec.price_col in f.columns:
        price_sign = pl.col(spec.price_col).cast(pl.Float64).sign()
        f = f.with_columns(
            ((pl.col(c) == 0) | (pl.col(c).cast(pl.Float64).sign() == price_sign * s))
            .alias(f"_gate_sign_{c}")
            for c, s in spec.price_signed.items() if c in f.columns)
    return f.with_columns(pl.col(pl.Decimal).cast(pl.Float64))


_PARTITION_TARGETS = frozenset({"_gate_gap_before", "_gate_gap_after", "_gate_on_grid"})
_ROW_EXPECTATIONS = frozenset({"expect_column_values_to_not_be_null",
                               "expect_column_values_to_be_between",
                               "expect_column_values_to_be_in_set"})


def _row_level(expectation: str, target: str) -> bool:
    return expectation in _ROW_EXPECTATIONS and target not in _PARTITION_TARGETS


def row_reasons(spec: MartSpec, prepared: pl.DataFrame) -> pl.DataFrame:
    """Rows of a ``_prepare``d frame that break a row-level expectation: ``site_id``, the time
    key as ``key_start_s`` and ``reasons`` (list of text). The same rules as the suite
    (nulls are judged by the not-null checks only, as GX does)."""
    cols = set(prepared.columns)
    checks: list[pl.Expr] = []
    for c in spec.not_null:
        if c in cols:
            checks.append(pl.when(pl.col(c).is_null()).then(pl.lit(f"{c} is null")))
    for c, (lo, hi) in spec.ranges.items():
        if c not in cols:
            continue
        x = pl.col(c).cast(pl.Float64)
        out = pl.lit(False)
        if lo is not None:
            out = out | (x < lo)
        if hi is not None:
            out = out | (x > hi)
        checks.append(pl.when(out).then(pl.format(f"{c}={{}} outside [{lo}, {hi}]", x)))
    for c in spec.must_be_true:
        if c not in cols:
            continue
        why = pl.lit(f"{c} is false")
        if c == "settled" and "held_reason" in cols:
            why = pl.format("settled is false ({})", pl.col("held_reason").fill_null("no reason"))
        if c == "poi_complete" and "poi_estimated" in cols:
            # Say it is an estimate (settled on, restated when readings arrive), not a hole.
            why = pl.when(pl.col("poi_estimated")).then(pl.format(
                "poi_mwh estimated: {} s without a POI reading, from AI + mining + overhead "
                "model", pl.col("poi_estimated_s").cast(pl.Int64))).otherwise(why)
        checks.append(pl.when(pl.col(c).eq(False)).then(why))
    for c in sorted(cols):
        if c.startswith("_gate_sign_"):
            money = c.removeprefix("_gate_sign_")
            checks.append(pl.when(pl.col(c).eq(False)).then(
                pl.lit(f"{money} has the wrong sign for the price")))
    if spec.sum_total is not None and "_gate_sum_residual" in cols:
        off = pl.col("_gate_sum_residual").abs() > spec.sum_tolerance
        checks.append(pl.when(off).then(pl.format(
            f"{spec.sum_total} - sum of parts = {{}}", pl.col("_gate_sum_residual"))))
    if not checks:
        checks = [pl.lit(None, dtype=pl.String)]
    flagged = prepared.select(
        pl.col("site_id"), pl.col(spec.time_key).cast(pl.Int64).alias("key_start_s"),
        pl.concat_list([e.cast(pl.String) for e in checks]).list.drop_nulls().alias("reasons"))
    return flagged.filter(pl.col("reasons").list.len() > 0)


def _expectations(spec: MartSpec, columns: list[str]) -> list[Any]:
    import great_expectations as gx

    e: Any = gx.expectations  # its classes are not in __all__ (mypy attr-defined)
    out: list[Any] = [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=spec.keys),
        e.ExpectColumnValuesToBeBetween(column="_gate_gap_before", min_value=0, max_value=0),
        e.ExpectColumnValuesToBeInSet(column="_gate_on_grid", value_set=[True]),
    ]
    if "_gate_gap_after" in columns:
        out.append(e.ExpectColumnValuesToBeBetween(column="_gate_gap_after", min_value=0,
                                                   max_value=0))
    out += [e.ExpectColumnValuesToBeInSet(column=c, value_set=[True])
            for c in columns if c.startswith("_gate_sign_")]
    out += [e.ExpectColumnToExist(column=c) for c in spec.not_null if c not in columns]
    out += [e.ExpectColumnValuesToNotBeNull(column=c) for c in spec.not_null if c in columns]
    for col, (lo, hi) in spec.ranges.items():
        if col in columns:
            out.append(e.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi))
    out += [e.ExpectColumnValuesToBeInSet(column=c, value_set=[True])
            for c in spec.must_be_true if c in columns]
    if spec.sum_total is not None:
        out.append(e.ExpectColumnValuesToBeBetween(
            column="_gate_sum_residual", min_value=-spec.sum_tolerance,
            max_value=spec.sum_tolerance))
    return out


def run_gate(mart_name: str, frame: pl.DataFrame, *,
             period_s: tuple[int, int] | None = None) -> GateResult:
    """Validate one mart build; ``success`` is false when any expectation failed.

    ``period_s``: the ``[start, end)`` UTC epoch seconds the build must cover for each site
    (the day or month being published); without it, the start is the UTC or market-local
    midnight at or before each site's first row and the end is not checked.

    Raises ``KeyError`` for an unknown mart and :class:`GateError` when GX could not evaluate
    an expectation (or a column the suite needs is absent from the frame).
    """
    if mart_name not in SPECS:
        raise KeyError(f"run_gate: unknown mart {mart_name!r}; known {sorted(SPECS)}")
    spec = SPECS[mart_name]
    needed = {*spec.keys, *spec.sum_parts, *([spec.sum_total] if spec.sum_total else [])}
    absent = sorted(c for c in needed if c not in frame.columns)
    if absent:
        raise GateError(f"gate {mart_name}: frame lacks column(s) {absent} the suite needs")
    prepared = _prepare(spec, frame, period_s)

    import great_expectations as gx

    name = f"{mart_name}_{uuid.uuid4().hex[:8]}"
    ctx = gx.get_context(mode="ephemeral")
    suite = ctx.suites.add(gx.ExpectationSuite(name=name))
    for exp in _expectations(spec, prepared.columns):
        suite.add_expectation(exp)
    batch_def = (ctx.data_sources.add_pandas(name).add_dataframe_asset(name)
                 .add_batch_definition_whole_dataframe(name))
    batch = batch_def.get_batch(batch_parameters={"dataframe": prepared.to_pandas()})
    res = batch.validate(suite)
    outcomes: list[ExpectationOutcome] = []
    broken: list[str] = []
    for r in res.results:
        cfg = r.expectation_config
        kw = cfg.kwargs if cfg is not None else {}
        target = str(kw.get("column") or kw.get("column_list") or "table")
        etype = cfg.type if cfg is not None else "?"
        for message in _raised(r.exception_info):
            broken.append(f"{etype}({target}): {message}")
        result = r.result or {}
        outcomes.append(ExpectationOutcome(
            expectation=etype, target=target, success=bool(r.success),
            unexpected_count=result.get("unexpected_count"),
            detail=_detail(result), row_level=_row_level(etype, target)))
    if broken:
        raise GateError(f"gate {mart_name}: {len(broken)} expectation(s) raised inside GX "
                        "(gate broken, data not judged): " + "; ".join(broken))
    provisional: tuple[ProvisionalRow, ...] = ()
    if not res.success:
        provisional = tuple(
            ProvisionalRow(str(site), int(key), tuple(reasons))
            for site, key, reasons in row_reasons(spec, prepared).iter_rows())
    return GateResult(mart=mart_name, success=bool(res.success), rows=frame.height,
                      outcomes=outcomes, provisional=provisional)


def _raised(info: Any) -> list[str]:
    """Messages of exceptions GX caught. ``exception_info`` is either flat
    (``{"raised_exception": False, ...}``) or, when a metric failed, keyed by metric id
    with ``raised_exception`` as the *string* ``'True'``: a naive check misses it."""
    if not isinstance(info, dict):
        return []
    entries = [info] if "raised_exception" in info else list(info.values())
    out = []
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("raised_exception")).lower() == "true":
            out.append(str(entry.get("exception_message")))
    return out


def _detail(result: dict[str, Any]) -> str:
    if result.get("partial_unexpected_list"):
        return f"e.g. {result['partial_unexpected_list'][:3]}"
    if "observed_value" in result:
        return f"observed={result['observed_value']}"
    return ""
