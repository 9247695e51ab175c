"""Energy from power: counters first, otherwise a left-Riemann sum; gaps are missing data.

Counters (NVML ``energy_mj``, meter Wh registers) integrate in the device, so their
differences are exact whatever the sampling; a backward step is a *wrap* (when the counter has
a known modulus and the wrapped step is plausible) or a *reset* (device reboot: the energy
since the reset is the new reading, the energy before it is lost and flagged).

Without a counter, power is integrated with a **left Riemann sum**: each sample's power is
held until the next sample. SitePower's ``ts_s`` is the start of the second and its values
are that second's averages (NVML power is itself a 1-second average), so W x 1 s is the exact
energy of the second; a trapezoid would blend in the neighbouring second. A hold longer than
``max_gap_s`` is not extended: the sample counts for its nominal ``period_s`` and the rest of
the span is *missing* (counted in ``missing_s``, flagged, never interpolated).

The revenue (POI) meter is the settled quantity, so a gap in it is never a zero (that would
invent sell-back). A second with a site-power sample but no POI reading is *estimated*
(``poi_estimate_w``): the second's AI and mining power (sub-meters, or device sums where a
sub-meter was missing too) plus the overhead model the power stage applied to it; the
interval counts those seconds in ``poi_estimated_s`` and sets ``poi_estimated``, keeps
``poi_complete`` false (the marts publish it provisional, and settle on the estimate until
real readings restate those seconds). Seconds with no sample at all cannot be estimated: the
interval's ``poi_mwh`` is then null (held from settlement), unless the meter's own register
gives the interval.

A held span that crosses an interval boundary is split at the boundary, so each interval
gets exactly the seconds it covers (``max_gap_s`` is at most one interval, so a span crosses
at most one boundary).
"""

from __future__ import annotations

import polars as pl

from streams.errors import TerminalError
from transforms.calendar import INTERVAL_S, interval_start_s

SITE_POWER_COLUMNS = ["site_id", "ts_s", "ai_w", "mining_w", "overhead_w", "total_w",
                      "poi_meter_w", "contract_w", "hashrate_ths"]
"""Columns ``interval_energy`` needs (names and units of schemas.events.SitePower)."""

COLUMNS: dict[str, dict[str, str]] = {
    "interval_energy": {
        "site_id": "site identifier",
        "interval_start_s": "settlement interval start, UTC epoch seconds (key with site_id)",
        "ai_mwh": "AI (GPU) energy in the interval, MWh",
        "mining_mwh": "mining (ASIC) energy in the interval, MWh",
        "overhead_mwh": "facility overhead energy (POI - AI - mining, or model), MWh",
        "total_mwh": "sum of the uses (ai + mining + overhead), MWh",
        "poi_mwh": "revenue (POI) meter energy of the interval (or its register difference "
                   "when given), seconds without a reading estimated (poi_estimated_s); null "
                   "when some had no sample to estimate from (held from settlement), MWh",
        "poi_complete": "true when the meter (or its register) covered the whole interval "
                        "(false: a POI gap, poi_mwh estimated or null; published provisional)",
        "poi_estimated": "true when poi_mwh includes estimated seconds (poi_estimated_s > 0): "
                         "provisional until real POI readings restate them",
        "contract_mwh": "contracted (forward) power integrated over covered seconds, MWh",
        "unabsorbed_mwh": "contract energy not used by the site, sum of max(contract - total,"
                          " 0) per second, MWh",
        "over_contract_mwh": "draw above contract, sum of max(total - contract, 0) per second,"
                             " MWh",
        "hashrate_ph_days": "mining work delivered, PH/s x days (hashrate integrated)",
        "covered_s": "seconds of the interval covered by samples, s",
        "missing_s": "seconds of the interval with no valid sample (gaps), s",
        "gap_count": "sample gaps longer than max_gap_s, count",
        "poi_missing_s": "seconds of the interval without a POI reading (sample gaps "
                         "included; 0 when the register gives the interval), s",
        "poi_estimated_s": "seconds of poi_missing_s whose POI power is estimated: AI + mining "
                           "+ overhead model of the second (0 when the register gives the "
                           "interval), s",
        "poi_diff_mwh": "total_mwh - poi_mwh (null when poi_mwh is), MWh",
        "poi_diff_frac": "poi_diff_mwh / poi_mwh (null when poi_mwh is 0), fraction",
        "reconciled": "true when the POI meter covered the whole interval, the samples did too, "
                      "and |poi_diff_mwh| <= tolerance_frac x |poi_mwh| + tolerance_mwh",
    },
    "counter_energy": {
        "interval_start_s": "interval of the step's start, UTC epoch seconds (plus by-columns)",
        "energy_wh": "counter energy attributed to the interval, Wh",
        "unallocated_wh": "energy of steps over a gap that crosses an interval boundary "
                          "(known total, unknown split), Wh",
        "resets": "counter resets (backward steps that are not wraps), count",
        "wraps": "counter wraps, count",
        "gaps": "steps longer than max_gap_s, count",
    },
}

_USES = ["ai", "mining", "overhead", "total"]


class EnergyInputError(TerminalError, ValueError):
    """The power or counter frame cannot be integrated (missing columns, duplicate keys)."""


def _check(frame: pl.DataFrame, columns: list[str], keys: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EnergyInputError(f"{what}: missing column(s) {missing}")
    dup = frame.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        raise EnergyInputError(f"{what}: duplicate {keys} e.g. {dup.row(0, named=True)}")


def held_seconds(frame: pl.DataFrame, *, ts_col: str = "ts_s", by: list[str] | None = None,
                 max_gap_s: float = 5.0, period_s: float = 1.0) -> pl.DataFrame:
    """Adds ``held_s`` (time each sample's value is held, left Riemann), ``missing_after_s``
    and ``gap`` (span to the next sample longer than ``max_gap_s``). Sorted by ``by``, ts."""
    by = by or []
    if max_gap_s < period_s:
        raise EnergyInputError(f"max_gap_s={max_gap_s} is shorter than period_s={period_s}")
    dt = (pl.col(ts_col).shift(-1) - pl.col(ts_col))
    dt = dt.over(by) if by else dt
    out = frame.sort([*by, ts_col]).with_columns(dt.fill_null(period_s).cast(pl.Float64)
                                                 .alias("_dt"))
    gap = pl.col("_dt") > max_gap_s
    return out.with_columns(
        pl.when(gap).then(pl.lit(float(period_s))).otherwise(pl.col("_dt")).alias("held_s"),
        pl.when(gap).then(pl.col("_dt") - period_s).otherwise(0.0).alias("missing_after_s"),
        gap.alias("gap"),
    ).drop("_dt")


def poi_estimate_w() -> pl.Expr:
    """Estimated POI power of a second without a POI reading (null when it has one, or when
    a use is unknown): AI + mining + overhead. Without the POI meter the power stage's
    ``overhead_w`` is the site's overhead model, ``overhead_fixed_mw + overhead_fraction x
    (ai + mining)`` of the config in force then (``streams.decisions.power``), so this is the
    sub-metered (or device-summed) load plus modelled losses and cooling: a model, not a
    meter; its error is the overhead model's."""
    est = pl.col("ai_w") + pl.col("mining_w") + pl.col("overhead_w")
    return pl.when(pl.col("poi_meter_w").is_null()).then(est)


def _split_at_boundaries(f: pl.DataFrame) -> pl.DataFrame:
    """Split each held span at the 15-minute boundary it crosses; adds ``interval_start_s``."""
    iv = interval_start_s(pl.col("ts_s"))
    f = f.with_columns(iv.alias("interval_start_s"),
                       (pl.col("ts_s") + pl.col("held_s") - iv - INTERVAL_S)
                       .clip(lower_bound=0.0).alias("_spill"))
    first = f.with_columns(pl.col("held_s") - pl.col("_spill"))
    spill = f.filter(pl.col("_spill") > 0).with_columns(
        (pl.col("interval_start_s") + INTERVAL_S).alias("interval_start_s"),
        pl.col("_spill").alias("held_s"),
        pl.lit(False).alias("gap"))  # the gap, if any, is counted on the first part
    return pl.concat([first, spill]).drop("_spill")


def interval_energy(site_power: pl.DataFrame, *, max_gap_s: float = 5.0,
                    period_s: float = 1.0, tolerance_frac: float = 0.005,
                    tolerance_mwh: float = 0.001,
                    poi_register: pl.DataFrame | None = None,
                    intervals: pl.DataFrame | None = None) -> pl.DataFrame:
    """15-minute energy by use from 1-second site power, reconciled with the POI meter.

    ``site_power``: ``SITE_POWER_COLUMNS`` (W, TH/s; ``poi_meter_w`` may be null).
    ``poi_register``: optional ``[site_id, interval_start_s, poi_mwh]`` from the meter's own
    register (see ``counter_interval_energy``); it replaces the integrated POI power.
    ``intervals``: optional ``[interval_start_s]`` that must all appear; those without any
    sample come out with zero energy and ``missing_s = 900``.
    Returns ``COLUMNS["interval_energy"]``.
    """
    _check(site_power, SITE_POWER_COLUMNS, ["site_id", "ts_s"], "interval_energy(site_power)")
    if max_gap_s > INTERVAL_S:
        raise EnergyInputError(f"max_gap_s={max_gap_s} exceeds one interval ({INTERVAL_S} s)")
    f = _split_at_boundaries(
        held_seconds(site_power, by=["site_id"], max_gap_s=max_gap_s, period_s=period_s))
    h = pl.col("held_s") / 3.6e9  # W x s -> MWh
    poi_ok = pl.col("poi_meter_w").is_not_null()
    estimate = poi_estimate_w()
    f = f.with_columns(
        *((pl.col(f"{u}_w") * h).alias(f"{u}_mwh") for u in _USES),
        # Null where neither a reading nor an estimate exists: nulled below if any such.
        (pl.coalesce("poi_meter_w", estimate) * h).alias("poi_mwh"),
        (pl.col("contract_w") * h).alias("contract_mwh"),
        ((pl.col("contract_w") - pl.col("total_w")).clip(lower_bound=0) * h)
        .alias("unabsorbed_mwh"),
        ((pl.col("total_w") - pl.col("contract_w")).clip(lower_bound=0) * h)
        .alias("over_contract_mwh"),
        (pl.col("hashrate_ths") * pl.col("held_s") / 1000.0 / 86400.0).alias("hashrate_ph_days"),
        pl.when(poi_ok).then(0.0).otherwise(pl.col("held_s")).alias("poi_missing_s"),
        pl.when(estimate.is_not_null()).then(pl.col("held_s")).otherwise(0.0)
        .alias("poi_estimated_s"),
    )
    sums = [*(f"{u}_mwh" for u in _USES), "poi_mwh", "contract_mwh", "unabsorbed_mwh",
            "over_contract_mwh", "hashrate_ph_days", "poi_missing_s", "poi_estimated_s"]
    g = f.group_by("site_id", "interval_start_s").agg(
        *(pl.col(c).sum() for c in sums),
        pl.col("held_s").sum().alias("covered_s"),
        pl.col("gap").sum().cast(pl.Int64).alias("gap_count"),
    )
    if intervals is not None:
        grid = g.select("site_id").unique().join(intervals.select("interval_start_s"),
                                                 how="cross")
        g = grid.join(g, on=["site_id", "interval_start_s"], how="left").with_columns(
            *(pl.col(c).fill_null(0.0) for c in [*sums, "covered_s"]),
            pl.col("gap_count").fill_null(0),
        )
    if poi_register is not None:
        _check(poi_register, ["site_id", "interval_start_s", "poi_mwh"],
               ["site_id", "interval_start_s"], "interval_energy(poi_register)")
        g = g.drop("poi_mwh").join(poi_register.select("site_id", "interval_start_s",
                                                       "poi_mwh"),
                                   on=["site_id", "interval_start_s"], how="left")
        # The register's difference is the meter's own energy: complete whatever the samples.
        g = g.with_columns(pl.when(pl.col("poi_mwh").is_null()).then(float(INTERVAL_S))
                           .otherwise(0.0).alias("poi_missing_s"),
                           pl.lit(0.0).alias("poi_estimated_s"))
    else:
        # Seconds with no sample at all are POI seconds missing too, and cannot be estimated.
        g = g.with_columns((pl.col("poi_missing_s") + INTERVAL_S - pl.col("covered_s"))
                           .alias("poi_missing_s"))
        known = pl.col("poi_missing_s") == pl.col("poi_estimated_s")
        g = g.with_columns(pl.when(known).then(pl.col("poi_mwh")).alias("poi_mwh"))
    covered = pl.col("covered_s")
    diff = pl.col("total_mwh") - pl.col("poi_mwh")
    return g.with_columns(
        covered.alias("covered_s"),
        (INTERVAL_S - covered).alias("missing_s"),
        (pl.col("poi_missing_s") == 0).alias("poi_complete"),
        (pl.col("poi_mwh").is_not_null() & (pl.col("poi_estimated_s") > 0))
        .alias("poi_estimated"),
        diff.alias("poi_diff_mwh"),
        pl.when(pl.col("poi_mwh") != 0).then(diff / pl.col("poi_mwh")).alias("poi_diff_frac"),
        ((pl.col("poi_missing_s") == 0) & (covered == INTERVAL_S)
         & (diff.abs() <= tolerance_frac * pl.col("poi_mwh").abs() + tolerance_mwh))
        .fill_null(False).alias("reconciled"),
    ).sort("site_id", "interval_start_s").select(list(COLUMNS["interval_energy"]))


def counter_steps(frame: pl.DataFrame, *, counter_col: str, ts_col: str = "ts_s",
                  by: list[str] | None = None, to_wh: float = 1.0,
                  wrap_at: float | None = None, max_gap_s: float = 5.0) -> pl.DataFrame:
    """One row per consecutive pair of counter readings: ``start_s``, ``end_s``, ``energy_wh``,
    ``kind`` (``ok``/``wrap``/``reset``) and ``gap`` (span longer than ``max_gap_s``).

    ``to_wh`` converts counter units to Wh (NVML mJ: 1/3.6e6). A backward step is a wrap when
    ``wrap_at`` (the counter modulus) is given and the wrapped step is under half the modulus;
    otherwise a reset, whose energy is the new reading (what accrued since the reset).
    """
    by = by or []
    _check(frame, [ts_col, counter_col, *by], [*by, ts_col], "counter_steps")
    prev_c = pl.col(counter_col).shift(1)
    prev_t = pl.col(ts_col).shift(1)
    if by:
        prev_c, prev_t = prev_c.over(by), prev_t.over(by)
    f = frame.sort([*by, ts_col]).with_columns(prev_c.alias("_prev"), prev_t.alias("start_s"))
    f = f.filter(pl.col("_prev").is_not_null())
    step = pl.col(counter_col) - pl.col("_prev")
    if wrap_at is not None:
        wrapped = step + wrap_at
        is_wrap = (step < 0) & (wrapped < wrap_at / 2)
    else:
        wrapped = step
        is_wrap = pl.lit(False)
    kind = (pl.when(step >= 0).then(pl.lit("ok")).when(is_wrap).then(pl.lit("wrap"))
            .otherwise(pl.lit("reset")))
    delta = (pl.when(step >= 0).then(step).when(is_wrap).then(wrapped)
             .otherwise(pl.col(counter_col)))
    return f.with_columns(
        pl.col(ts_col).alias("end_s"),
        (delta.cast(pl.Float64) * to_wh).alias("energy_wh"),
        kind.alias("kind"),
        ((pl.col(ts_col) - pl.col("start_s")) > max_gap_s).alias("gap"),
    ).select(*by, "start_s", "end_s", "energy_wh", "kind", "gap")


def counter_interval_energy(frame: pl.DataFrame, *, counter_col: str, ts_col: str = "ts_s",
                            by: list[str] | None = None, to_wh: float = 1.0,
                            wrap_at: float | None = None,
                            max_gap_s: float = 5.0) -> pl.DataFrame:
    """Counter energy per 15-minute interval: ``COLUMNS["counter_energy"]`` (+ ``by``).

    A step is attributed to the interval of its start. A gap step that crosses an interval
    boundary is not split (that would be interpolation): its energy goes to ``unallocated_wh``.
    """
    by = by or []
    steps = counter_steps(frame, counter_col=counter_col, ts_col=ts_col, by=by, to_wh=to_wh,
                          wrap_at=wrap_at, max_gap_s=max_gap_s)
    start_iv = interval_start_s(pl.col("start_s"))
    crosses = pl.col("gap") & (pl.col("end_s") > start_iv + INTERVAL_S)
    return (
        steps.with_columns(start_iv.alias("interval_start_s"), crosses.alias("_x"))
        .group_by(*by, "interval_start_s")
        .agg(
            pl.col("energy_wh").filter(~pl.col("_x")).sum(),
            pl.col("energy_wh").filter(pl.col("_x")).sum().alias("unallocated_wh"),
            (pl.col("kind") == "reset").sum().cast(pl.Int64).alias("resets"),
            (pl.col("kind") == "wrap").sum().cast(pl.Int64).alias("wraps"),
            pl.col("gap").sum().cast(pl.Int64).alias("gaps"),
        )
        .sort(*by, "interval_start_s")
    )
