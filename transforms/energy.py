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
covers them.

Where the POI meter's energy register is read (``SitePower.poi_energy_wh``), the interval's
POI energy comes from the register and the samples fill only what it cannot cover
(``poi_register_s``, ``poi_source``): the register integrates in the meter, so its
differences are the meter's own energy whatever the power sampling. A reading folded into
second ``s`` is taken as the count at ``s + 1``, the end of the second whose power SitePower
carries (a scrape sits somewhere in its second: that is the convention's +-1 s). The register
covers the span between two consecutive readings when the step is clean (no reset, not
longer than ``register_max_gap_s``) and lies within one interval. A step that straddles an
interval boundary is not split (a linear split would be a guess, and would make an interval
wait for the reading after its end): its seconds come from the samples, as do a reset's
(the energy between the last reading and the reset is unknown) and a gap's. With a register
read every second the readings fall on every boundary and the register covers the interval.

The AI and mining sub-meters' registers (``SitePower.ai_energy_wh``, ``mining_energy_wh``)
give ``ai_mwh`` and ``mining_mwh`` by the same rule (``ai_register_s``, ``ai_source``, ...).
The overhead stays what the POI leaves after AI and mining: over the seconds a register
covers, its energy replaces what the samples said, and the overhead takes the change (up
with the POI register's, down with the sub-meters'), so ``total_mwh = ai + mining +
overhead`` and, where the POI register covers, ``overhead_mwh = poi_mwh - ai_mwh -
mining_mwh``. ``total_mwh`` is the POI register where it covers and the uses' samples
elsewhere; the per-second splits (``unabsorbed_mwh``, ``over_contract_mwh``) stay the
samples' (a register step has no per-second shape).

GPU energy counters (``SitePower.ai_counter_wh``: NVML's per-GPU counter steps between a
collector's polls, ``streams.collectors.gpu_steps``) give the GPUs' own energy over each
step. The power stage attributes a step to the second of the poll that ends it, together
with what the AI samples held over the same step (``ai_counter_sampled_wh``), and keeps only
steps whose held seconds lie in one interval. Those seconds end the second before the poll's,
so the marts book a second's steps to the interval of the second before it (a poll in an
interval's first second closes the previous interval's last step), and put the counter's
energy in place of the held samples (``ai_counter_mwh`` in place of
``ai_counter_sampled_mwh``). What the counters do not cover stays from the samples: node
overhead (CPUs, fans, NICs: NVML counts the board), GPUs with no clean step, and the seconds
of steps that straddle a boundary. The overhead
takes the change where the POI meter read (it is what the POI leaves after the uses); where
the POI was estimated, the total and the estimate take it. Where the AI meter reads,
``ai_w`` is the meter's and the power stage sends no counter (the meter is the measurement).

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
        "ai_mwh": "AI (GPU) energy in the interval: the AI meters' register difference where "
                  "it covers the interval (ai_register_s), the rest integrated from samples, MWh",
        "mining_mwh": "mining (ASIC) energy in the interval: the mining meters' register "
                      "difference where it covers (mining_register_s), the rest from samples, "
                      "MWh",
        "overhead_mwh": "facility overhead energy (POI - AI - mining, or model), each from its "
                        "register where it has one, MWh",
        "total_mwh": "sum of the uses (ai + mining + overhead); the POI register where it "
                     "covers, MWh",
        "poi_mwh": "revenue (POI) meter energy of the interval: its register difference where "
                   "the register covers it (poi_register_s), the rest integrated from POI "
                   "samples, seconds without either estimated (poi_estimated_s); null "
                   "when some had no sample to estimate from (held from settlement), MWh",
        "poi_register_s": "seconds of the interval whose POI energy is the meter's register "
                          "difference (the rest from the samples), s",
        "poi_source": "name of where poi_mwh came from: register (the whole interval), mixed "
                      "(register and POI samples), samples (no register), estimate (some "
                      "seconds estimated)",
        "ai_register_s": "seconds of the interval whose AI energy is the AI meters' register "
                         "difference (the rest from the samples), s",
        "ai_source": "name of where ai_mwh came from: register (the whole interval), mixed "
                     "(register and samples), samples (no register)",
        "ai_counter_mwh": "GPU energy counters' steps within the interval (NVML, per GPU "
                          "between polls), in ai_mwh in place of ai_counter_sampled_mwh, MWh",
        "ai_counter_sampled_mwh": "what the AI samples held over those same steps, replaced "
                                  "by ai_counter_mwh (0: no counter steps), MWh",
        "mining_register_s": "seconds of the interval whose mining energy is the mining "
                             "meters' register difference (the rest from the samples), s",
        "mining_source": "name of where mining_mwh came from: register, mixed, samples (as "
                         "ai_source)",
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
        "poi_missing_s": "seconds of the interval with neither a POI register nor a POI "
                         "sample (sample gaps included), s",
        "poi_estimated_s": "seconds of poi_missing_s whose POI power is estimated: AI + mining "
                           "+ overhead model of the second, s",
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


REGISTER_MAX_GAP_S = 120.0
"""Longest span between two register readings still counted as the register's (a missed
poll at a 60-s cadence); a longer one is a gap, filled from the samples."""


def interval_energy(site_power: pl.DataFrame, *, max_gap_s: float = 5.0,
                    period_s: float = 1.0, tolerance_frac: float = 0.005,
                    tolerance_mwh: float = 0.001,
                    poi_register: pl.DataFrame | None = None,
                    ai_register: pl.DataFrame | None = None,
                    mining_register: pl.DataFrame | None = None,
                    ai_counter: pl.DataFrame | None = None,
                    register_max_gap_s: float = REGISTER_MAX_GAP_S,
                    intervals: pl.DataFrame | None = None) -> pl.DataFrame:
    """15-minute energy by use from 1-second site power, reconciled with the POI meter.

    ``site_power``: ``SITE_POWER_COLUMNS`` (W, TH/s; ``poi_meter_w`` may be null).
    ``poi_register``: optional ``[site_id, ts_s, poi_energy_wh]``, the POI meter's register
    read in second ``ts_s`` (SitePower's); where it covers the interval it replaces the
    integrated POI power (module doc). ``ai_register`` (``ai_energy_wh``) and
    ``mining_register`` (``mining_energy_wh``) do the same for the sub-meters.
    ``ai_counter``: optional ``[site_id, ts_s, ai_counter_wh, ai_counter_sampled_wh]``, the GPU
    counters' steps ended in second ``ts_s`` (module doc).
    ``intervals``: optional ``[interval_start_s]`` that must all appear; those without any
    sample come out with zero energy and ``missing_s = 900``.
    Returns ``COLUMNS["interval_energy"]``.
    """
    _check(site_power, SITE_POWER_COLUMNS, ["site_id", "ts_s"], "interval_energy(site_power)")
    if max_gap_s > INTERVAL_S:
        raise EnergyInputError(f"max_gap_s={max_gap_s} exceeds one interval ({INTERVAL_S} s)")
    f = _split_at_boundaries(
        held_seconds(site_power, by=["site_id"], max_gap_s=max_gap_s, period_s=period_s))
    given = {"poi": poi_register, "ai": ai_register, "mining": mining_register}
    segments = {u: _register_segments(r, f"{u}_energy_wh", register_max_gap_s,
                                      site_power.schema["site_id"]) for u, r in given.items()}
    # Seconds of each held span that a register does not cover: the samples fill those.
    t0 = pl.col("ts_s").cast(pl.Float64)
    f = f.with_columns(t0.alias("_t0"), (t0 + pl.col("held_s")).alias("_t1"))
    f = f.with_columns(*((pl.col("held_s") - _covered_before(f, seg, "_t1")
                          + _covered_before(f, seg, "_t0")).alias(f"_{u}_s")
                         for u, seg in segments.items()))
    h = pl.col("held_s") / 3.6e9  # W x s -> MWh

    def filled(w: pl.Expr | str, u: str) -> pl.Expr:  # energy of the seconds samples fill
        return (pl.col(w) if isinstance(w, str) else w) * pl.col(f"_{u}_s") / 3.6e9

    def replaced(w: str, u: str) -> pl.Expr:  # what the samples said where the register is
        return pl.col(w) * (pl.col("held_s") - pl.col(f"_{u}_s")) / 3.6e9

    poi_ok = pl.col("poi_meter_w").is_not_null()
    estimate = poi_estimate_w()
    f = f.with_columns(
        filled("ai_w", "ai").alias("ai_mwh"),
        filled("mining_w", "mining").alias("mining_mwh"),
        (pl.col("overhead_w") * h).alias("overhead_mwh"),
        filled("total_w", "poi").alias("total_mwh"),
        # Null where neither a reading nor an estimate exists: nulled below if any such.
        filled(pl.coalesce("poi_meter_w", estimate), "poi").alias("poi_mwh"),
        *(replaced(w, u).alias(f"_{u}_replaced")
          for w, u in (("total_w", "poi"), ("ai_w", "ai"), ("mining_w", "mining"))),
        (pl.col("contract_w") * h).alias("contract_mwh"),
        ((pl.col("contract_w") - pl.col("total_w")).clip(lower_bound=0) * h)
        .alias("unabsorbed_mwh"),
        ((pl.col("total_w") - pl.col("contract_w")).clip(lower_bound=0) * h)
        .alias("over_contract_mwh"),
        (pl.col("hashrate_ths") * pl.col("held_s") / 1000.0 / 86400.0).alias("hashrate_ph_days"),
        pl.when(poi_ok).then(0.0).otherwise(pl.col("_poi_s")).alias("poi_missing_s"),
        pl.when(estimate.is_not_null()).then(pl.col("_poi_s")).otherwise(0.0)
        .alias("poi_estimated_s"),
    )
    sums = [*(f"{u}_mwh" for u in _USES), "poi_mwh", "contract_mwh", "unabsorbed_mwh",
            "over_contract_mwh", "hashrate_ph_days", "poi_missing_s", "poi_estimated_s",
            *(f"_{u}_replaced" for u in REGISTERS)]
    g = f.group_by("site_id", "interval_start_s").agg(
        *(pl.col(c).sum() for c in sums),
        pl.col("held_s").sum().alias("covered_s"),
        pl.col("_poi_s").sum().alias("_sampled_s"),
        pl.col("gap").sum().cast(pl.Int64).alias("gap_count"),
    )
    for u, seg in segments.items():
        reg = seg.group_by("site_id", "interval_start_s").agg(
            (pl.col("energy_wh").sum() / 1e6).alias(f"_{u}_reg_mwh"),
            (pl.col("end_s") - pl.col("start_s")).sum().alias(f"{u}_register_s"))
        # An interval a register covers has a row even without samples.
        g = g.join(reg, on=["site_id", "interval_start_s"], how="full", coalesce=True)
    if intervals is not None:
        grid = g.select("site_id").unique().join(intervals.select("interval_start_s"),
                                                 how="cross")
        g = grid.join(g, on=["site_id", "interval_start_s"], how="left")
    zero = [*sums, "covered_s", "_sampled_s",
            *(c for u in REGISTERS for c in (f"_{u}_reg_mwh", f"{u}_register_s"))]
    g = g.with_columns(*(pl.col(c).fill_null(0.0) for c in zero),
                       pl.col("gap_count").fill_null(0))
    g = g.with_columns(*_from_registers())
    g = _with_counters(g, ai_counter, site_power)
    # Seconds with neither a register nor a sample are POI seconds missing, not estimable.
    g = g.with_columns((pl.col("poi_missing_s") + INTERVAL_S - pl.col("poi_register_s")
                        - pl.col("_sampled_s")).alias("poi_missing_s"))
    known = (pl.col("poi_missing_s") - pl.col("poi_estimated_s")).abs() < 1e-6
    g = g.with_columns(pl.when(known).then(pl.col("poi_mwh") + pl.col("_poi_reg_mwh"))
                       .alias("poi_mwh"))
    covered = pl.col("covered_s")
    diff = pl.col("total_mwh") - pl.col("poi_mwh")
    complete = pl.col("poi_missing_s") < 1e-6
    return g.with_columns(
        covered.alias("covered_s"),
        (INTERVAL_S - covered).alias("missing_s"),
        _source("poi").alias("poi_source"),
        _source("ai").alias("ai_source"),
        _source("mining").alias("mining_source"),
        complete.alias("poi_complete"),
        (pl.col("poi_mwh").is_not_null() & (pl.col("poi_estimated_s") > 0))
        .alias("poi_estimated"),
        diff.alias("poi_diff_mwh"),
        pl.when(pl.col("poi_mwh") != 0).then(diff / pl.col("poi_mwh")).alias("poi_diff_frac"),
        (complete & (covered == INTERVAL_S)
         & (diff.abs() <= tolerance_frac * pl.col("poi_mwh").abs() + tolerance_mwh))
        .fill_null(False).alias("reconciled"),
    ).sort("site_id", "interval_start_s").select(list(COLUMNS["interval_energy"]))


COUNTER_COLUMNS = ["site_id", "ts_s", "ai_counter_wh", "ai_counter_sampled_wh"]


def _with_counters(g: pl.DataFrame, counters: pl.DataFrame | None,
                   site_power: pl.DataFrame) -> pl.DataFrame:
    """``g`` with the GPU counters' energy in place of the samples they cover (module doc)."""
    sums = ["ai_counter_mwh", "ai_counter_sampled_mwh", "_d_metered", "_d_estimated"]
    if counters is None or counters.height == 0:
        return g.with_columns(*(pl.lit(0.0).alias(c) for c in sums)).drop(sums[2:])
    _check(counters, COUNTER_COLUMNS, ["site_id", "ts_s"], "interval_energy(ai_counter)")
    poi = site_power.select(pl.col("site_id").cast(counters.schema["site_id"]), "ts_s",
                            pl.col("poi_meter_w").is_not_null().alias("_poi"))
    delta = (pl.col("ai_counter_wh") - pl.col("ai_counter_sampled_wh")) / 1e6
    per = (counters.select(COUNTER_COLUMNS).drop_nulls()
           .join(poi, on=["site_id", "ts_s"], how="left")
           # A step ending in second s held the seconds before s: the interval of s - 1.
           .with_columns(interval_start_s(pl.col("ts_s") - 1).alias("interval_start_s"))
           .group_by("site_id", "interval_start_s")
           .agg((pl.col("ai_counter_wh").sum() / 1e6).alias("ai_counter_mwh"),
                (pl.col("ai_counter_sampled_wh").sum() / 1e6).alias("ai_counter_sampled_mwh"),
                delta.filter(pl.col("_poi").fill_null(False)).sum().alias("_d_metered"),
                delta.filter(~pl.col("_poi").fill_null(False)).sum().alias("_d_estimated")))
    per = per.with_columns(pl.col("site_id").cast(g.schema["site_id"]),
                           pl.col("interval_start_s").cast(g.schema["interval_start_s"]))
    g = g.join(per, on=["site_id", "interval_start_s"], how="left")
    g = g.with_columns(*(pl.col(c).fill_null(0.0) for c in sums))
    both = pl.col("_d_metered") + pl.col("_d_estimated")
    return g.with_columns(
        (pl.col("ai_mwh") + both).alias("ai_mwh"),
        # Where the POI read, the overhead is what it leaves; elsewhere the total moves.
        (pl.col("overhead_mwh") - pl.col("_d_metered")).alias("overhead_mwh"),
        (pl.col("total_mwh") + pl.col("_d_estimated")).alias("total_mwh"),
        (pl.col("poi_mwh") + pl.col("_d_estimated")).alias("poi_mwh"),
    ).drop("_d_metered", "_d_estimated")


REGISTERS = ("poi", "ai", "mining")
"""Meter roles whose energy registers ``interval_energy`` takes (``SitePower.<u>_energy_wh``)."""


def _from_registers() -> list[pl.Expr]:
    """AI, mining and total (the uses' sum, which the POI register bounds) with each
    register's energy in place of what the samples said over the seconds it covers; the
    overhead stays what the POI leaves after AI and mining (module doc)."""
    delta = {u: pl.col(f"_{u}_reg_mwh") - pl.col(f"_{u}_replaced") for u in REGISTERS}
    return [
        *((pl.col(f"{u}_mwh") + pl.col(f"_{u}_reg_mwh")).alias(f"{u}_mwh")
          for u in ("ai", "mining")),
        (pl.col("total_mwh") + pl.col("_poi_reg_mwh")).alias("total_mwh"),
        (pl.col("overhead_mwh") + delta["poi"] - delta["ai"] - delta["mining"])
        .alias("overhead_mwh"),
    ]


def _source(u: str) -> pl.Expr:
    """Where ``u``'s energy came from: register (the whole interval), mixed, samples; the
    POI's is estimate when some of its seconds were estimated."""
    by_register = (pl.when(pl.col(f"{u}_register_s") >= INTERVAL_S - 1e-6).then(pl.lit("register"))
                   .when(pl.col(f"{u}_register_s") > 0).then(pl.lit("mixed"))
                   .otherwise(pl.lit("samples")))
    if u != "poi":
        return by_register
    return pl.when(pl.col("poi_estimated_s") > 0).then(pl.lit("estimate")).otherwise(by_register)


def _register_segments(register: pl.DataFrame | None, column: str, max_gap_s: float,
                       site_dtype: pl.DataType) -> pl.DataFrame:
    """The spans the register in ``column`` covers: ``[site_id, start_s, end_s, energy_wh,
    interval_start_s, _cum_s]``, clean steps within one interval (module doc), sorted;
    ``_cum_s`` is the covered seconds of the site before the span."""
    schema = {"site_id": site_dtype, "start_s": pl.Float64(), "end_s": pl.Float64(),
              "energy_wh": pl.Float64(), "interval_start_s": pl.Int64(),
              "_cum_s": pl.Float64()}
    if register is None:
        return pl.DataFrame(schema=schema)
    if max_gap_s > INTERVAL_S:
        raise EnergyInputError(f"register_max_gap_s={max_gap_s} exceeds one interval")
    _check(register, ["site_id", "ts_s", column], ["site_id", "ts_s"],
           f"interval_energy({column})")
    readings = register.select(
        pl.col("site_id").cast(site_dtype),
        (pl.col("ts_s") + 1).cast(pl.Float64),  # the count at the end of its second
        pl.col(column).cast(pl.Float64)).drop_nulls()
    steps = counter_steps(readings, counter_col=column, by=["site_id"],
                          max_gap_s=max_gap_s)
    iv = interval_start_s(pl.col("start_s"))
    clean = ((pl.col("kind") != "reset") & ~pl.col("gap")
             & (pl.col("end_s") <= iv + INTERVAL_S))
    length = pl.col("end_s") - pl.col("start_s")
    return (steps.filter(clean)
            .with_columns(iv.cast(pl.Int64).alias("interval_start_s"))
            .sort("site_id", "start_s")
            .with_columns((length.cum_sum().over("site_id") - length).alias("_cum_s"))
            .select(list(schema)))


def _covered_before(f: pl.DataFrame, segments: pl.DataFrame, at: str) -> pl.Series:
    """Seconds of the site covered by ``segments`` before the time in column ``at`` of each
    row of ``f`` (a step function's integral: the spans are disjoint and sorted)."""
    if segments.height == 0:
        return pl.Series(at, [0.0] * f.height, dtype=pl.Float64)
    left = f.select("site_id", pl.col(at).alias("_t")).with_row_index("_row").sort("_t")
    hit = left.join_asof(segments.sort("start_s"), left_on="_t", right_on="start_s",
                         by="site_id", strategy="backward",
                         check_sortedness=False)  # both sorted by time; by-groups hide it
    inside = (pl.min_horizontal(pl.col("_t"), pl.col("end_s")) - pl.col("start_s"))
    return (hit.sort("_row")
            .select((pl.col("_cum_s") + inside).fill_null(0.0).alias(at))
            .to_series())


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
