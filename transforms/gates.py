"""Great Expectations quality gates, one suite per mart, run on the pandas path.

GX 1.24's DuckDB SQL path reports every expectation as failed (shared/notes/stack-facts.md
section 3), so frames go polars -> pandas. Checks GX cannot express directly are computed
exactly in polars first as helper columns (prefixed ``_gate_``) that GX then bounds:

- ``_gate_gap_before``: missing keys before each row within its site (completeness), must be 0;
- ``_gate_on_grid``: key on the 15-minute (or hourly) grid, must be true;
- ``_gate_sum_residual``: total minus the sum of its components (exact decimals for money;
  float for carbon), must be 0 (money) or within half a gram (carbon).

An expectation that raised inside GX (``exception_info.raised_exception``) is a broken gate,
not bad data: ``run_gate`` raises :class:`GateError` instead of returning a failed result.
GX is imported lazily (about 4 s).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from transforms.settlement import COMPONENTS


class GateError(RuntimeError):
    """The gate itself failed to run (an expectation raised); the data was not judged."""


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    target: str
    success: bool
    unexpected_count: int | None
    detail: str


@dataclass(frozen=True)
class GateResult:
    mart: str
    success: bool
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def report(self) -> str:
        head = (f"gate {self.mart}: {'PASS' if self.success else 'FAIL'} "
                f"({len(self.outcomes) - len(self.failures)}/{len(self.outcomes)} expectations,"
                f" {self.rows} rows)")
        lines = [head]
        for o in self.outcomes:
            mark = "ok  " if o.success else "FAIL"
            n = "" if o.unexpected_count is None else f" unexpected={o.unexpected_count}"
            lines.append(f"  {mark} {o.expectation}({o.target}){n} {o.detail}".rstrip())
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


_MWH_15 = 2500.0  # 10 GW for 15 minutes: far above any one site, catches unit slips (Wh as MWh)
_PRICE = (-1000.0, 10000.0)  # ERCOT offer floor -250, HCAP 5000 plus adders; units check

SPECS: dict[str, MartSpec] = {
    "interval_energy": MartSpec(
        keys=["site_id", "interval_start_s"], time_key="interval_start_s", step_s=900,
        not_null=["site_id", "interval_start_s", "ai_mwh", "mining_mwh", "overhead_mwh",
                  "total_mwh", "poi_mwh", "covered_s", "missing_s"],
        ranges={"ai_mwh": (0.0, _MWH_15), "mining_mwh": (0.0, _MWH_15),
                "overhead_mwh": (0.0, _MWH_15), "total_mwh": (0.0, _MWH_15),
                "poi_mwh": (0.0, _MWH_15), "covered_s": (0.0, 900.0),
                "missing_s": (0.0, 900.0), "hashrate_ph_days": (0.0, None)},
        must_be_true=["reconciled"],
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
                "forward_usd": (None, 0.0), "rt_purchase_usd": (None, 0.0),
                "mining_revenue_usd": (0.0, None), "dr_credit_usd": (0.0, None),
                "ancillary_credit_usd": (0.0, None), "four_cp_usd": (None, 0.0)},
        sum_total="net_usd", sum_parts=COMPONENTS, sum_tolerance=0.0,
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


def _prepare(spec: MartSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """Add the ``_gate_*`` helper columns and turn decimals into floats for GX."""
    site_keys = [k for k in spec.keys if k != spec.time_key]
    t = pl.col(spec.time_key)
    gap = ((t - t.shift(1)) // spec.step_s - 1).clip(lower_bound=0).fill_null(0)
    gap = gap.over(site_keys) if site_keys else gap
    f = frame.sort([*site_keys, spec.time_key]).with_columns(
        gap.alias("_gate_gap_before"), (t % spec.step_s == 0).alias("_gate_on_grid"))
    if spec.sum_total is not None:
        parts = pl.sum_horizontal(spec.sum_parts)
        f = f.with_columns((pl.col(spec.sum_total) - parts).cast(pl.Float64)
                           .alias("_gate_sum_residual"))
    return f.with_columns(pl.col(pl.Decimal).cast(pl.Float64))


def _expectations(spec: MartSpec, columns: list[str]) -> list[Any]:
    import great_expectations as gx

    e: Any = gx.expectations  # its classes are not in __all__ (mypy attr-defined)
    out: list[Any] = [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=spec.keys),
        e.ExpectColumnValuesToBeBetween(column="_gate_gap_before", min_value=0, max_value=0),
        e.ExpectColumnValuesToBeInSet(column="_gate_on_grid", value_set=[True]),
    ]
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


def run_gate(mart_name: str, frame: pl.DataFrame) -> GateResult:
    """Validate one mart build; ``success`` is false when any expectation failed.

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
    prepared = _prepare(spec, frame)

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
            detail=_detail(result)))
    if broken:
        raise GateError(f"gate {mart_name}: {len(broken)} expectation(s) raised inside GX "
                        "(gate broken, data not judged): " + "; ".join(broken))
    return GateResult(mart=mart_name, success=bool(res.success), rows=frame.height,
                      outcomes=outcomes)


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
