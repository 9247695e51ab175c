"""Restatements of published derived-mart rows, as audit records (pure polars).

A derived mart's day is rebuilt whenever its inputs change; ``diff_published`` compares the
rebuilt rows with the version the previous manifest published and returns one
``mart_revisions`` row per key whose values changed (or that is no longer produced). Keys
published for the first time are not revisions. Floats are equal within ``REL_TOL`` (a
rebuild from identical inputs must not look like a restatement even if a float sum is
reassociated); every other type, Decimal money included, must be exactly equal.

Because the comparison is against what was published, not against what the sink received,
a replayed batch (same rows upserted again) or an unchanged republication records nothing.

Seconds of ``site_power`` restated by late readings (``schemas.restatement``) are audited the
same way: ``diff_rows`` gives the sink the before and after of each restated second when it
applies the restatement, and the publication records the published before and after in
``mart_revisions`` (mart ``site_power``, key ``ts_s``).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from streams.marts.tables import BY_NAME, REVISIONS

SITE_POWER = BY_NAME["site_power"]

REL_TOL = 1e-12
ABS_TOL = 1e-12
TIME_KEYS: dict[str, str] = {
    "interval_energy": "interval_start_s",
    "settlement": "interval_start_s",
    "carbon_hourly": "hour_start_s",
    "site_power": "ts_s",
}
"""Time key of each derived mart and of ``site_power`` (the other key column is
``site_id``)."""

RESTATED_FLAG = "restated"


def empty_revisions() -> pl.DataFrame:
    return pl.DataFrame(schema=REVISIONS.schema())


def _changed(col: str, dtype: pl.DataType) -> pl.Expr:
    old, new = pl.col(f"{col}__old"), pl.col(f"{col}__new")
    nulls_differ = old.is_null() != new.is_null()
    if dtype.is_float():
        far = (old - new).abs() > pl.max_horizontal(old.abs(), new.abs()) * REL_TOL + ABS_TOL
        return nulls_differ | far.fill_null(False)
    return ~old.eq_missing(new)


def _text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.List):
        return expr.cast(pl.List(pl.String)).list.join(",")
    return expr.cast(pl.String)


def diff_rows(mart: str, old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """``site_id``, the time key, ``changed_columns``, ``old_values``, ``new_values`` for the
    keys of ``old`` whose values ``new`` changes (all columns when ``new`` lacks the key)."""
    time_key = TIME_KEYS[mart]
    keys = ["site_id", time_key]
    empty = pl.DataFrame(
        schema={
            "site_id": pl.String,
            time_key: pl.Int64,
            "changed_columns": pl.List(pl.String),
            "old_values": pl.List(pl.String),
            "new_values": pl.List(pl.String),
        }
    )
    if old.height == 0:
        return empty
    columns = [c for c in old.columns if c not in keys and c in new.columns]
    dtypes = old.schema
    o = old.select(*keys, *(pl.col(c).alias(f"{c}__old") for c in columns))
    n = new.select(
        *keys, *(pl.col(c).alias(f"{c}__new") for c in columns), pl.lit(True).alias("_present")
    )
    joined = o.join(n, on=keys, how="left")
    withdrawn = pl.col("_present").is_null()
    long = pl.concat(
        [
            joined.filter(withdrawn | _changed(c, dtypes[c])).select(
                *keys,
                pl.lit(i).alias("_pos"),
                pl.lit(c).alias("changed_columns"),
                _text(pl.col(f"{c}__old"), dtypes[c]).alias("old_values"),
                _text(pl.col(f"{c}__new"), dtypes[c]).alias("new_values"),
            )
            for i, c in enumerate(columns)
        ]
    )
    if long.height == 0:
        return empty
    return (
        long.sort(*keys, "_pos")
        .group_by(keys, maintain_order=True)
        .agg("changed_columns", "old_values", "new_values")
        .with_columns(pl.col(time_key).cast(pl.Int64))
    )


def diff_published(
    mart: str,
    old: pl.DataFrame,
    new: pl.DataFrame,
    *,
    generation_before: int,
    generation_after: int,
    revised_at_s: float,
) -> pl.DataFrame:
    """``mart_revisions`` rows for the keys of ``old`` (published) that ``new`` changes."""
    time_key = TIME_KEYS[mart]
    grouped = diff_rows(mart, old, new)
    if grouped.height == 0:
        return empty_revisions()
    return grouped.select(
        pl.lit(mart).alias("mart"),
        "site_id",
        pl.lit(time_key).alias("key_col"),
        pl.col(time_key).cast(pl.Int64).alias("key_start_s"),
        pl.lit(generation_before, dtype=pl.Int64).alias("generation_before"),
        pl.lit(generation_after, dtype=pl.Int64).alias("generation_after"),
        "changed_columns",
        "old_values",
        "new_values",
        pl.lit(revised_at_s, dtype=pl.Float64).alias("revised_at_s"),
    ).cast(REVISIONS.schema())  # type: ignore[arg-type]


def restated_rows(powers: list[Any]) -> pl.DataFrame:
    """``site_power`` rows of restated seconds (``SitePower`` messages), each flagged
    ``restated``; for one second restated twice, the last wins (restatements are
    cumulative)."""
    rows = [
        {
            c: list(dict.fromkeys([*p.flags, RESTATED_FLAG])) if c == "flags" else getattr(p, c)
            for c in SITE_POWER.names
        }
        for p in powers
    ]
    frame = pl.DataFrame(rows, schema=SITE_POWER.schema())
    return frame.unique(subset=["site_id", "ts_s"], keep="last", maintain_order=True)
