"""Documentation of every published table and column, with units, built from the code:
``streams.marts.tables`` for the sink's tables and ``mart_revisions``, and the transforms'
``COLUMNS`` dicts for the derived marts. The same text goes into the views file as
``COMMENT ON`` and into ``marts/README.md``, which also names the contract a sink table's
columns come from and the contract fields it does not store, with the reason."""

from __future__ import annotations

from dataclasses import dataclass

from streams.marts.tables import CONTRACTS, REVISIONS, TABLES, FromContract
from transforms import carbon, energy, settlement


@dataclass(frozen=True)
class TableDoc:
    name: str
    doc: str
    key: tuple[str, ...]
    partition: str
    columns: dict[str, str]
    contract: str = ""
    """Where the columns come from and which contract fields are not stored (Markdown)."""


def _contract_note(spec: FromContract) -> str:
    c = spec.contract
    note = f"Columns from the contract `{c.__name__}` (`{c.__module__}`)"
    if not spec.not_columns:
        return note + "."
    left = "; ".join(f"`{f}` ({why})" for f, why in spec.not_columns.items())
    return f"{note}. Its fields that are not columns of their own: {left}."


def published_docs() -> dict[str, TableDoc]:
    out: dict[str, TableDoc] = {}
    for t in TABLES:
        cols = {c.name: c.doc for c in (*t.columns, *t.derived)}
        out[t.name] = TableDoc(
            t.name,
            f"{t.doc} Source topic {t.topic}.",
            t.key,
            f"date of {t.time_col} (UTC), one file per hour",
            cols,
            _contract_note(CONTRACTS[t.name]) if t.name in CONTRACTS else "",
        )
    out["interval_energy"] = TableDoc(
        "interval_energy",
        "15-minute energy by use from site_power (transforms.energy.interval_energy); only "
        "intervals that are over, and only dates that passed the Great Expectations gate.",
        ("site_id", "interval_start_s"),
        "date of interval_start_s (UTC)",
        dict(energy.COLUMNS["interval_energy"]),
    )
    out["carbon_hourly"] = TableDoc(
        "carbon_hourly",
        "Hourly location- and market-based carbon (transforms.carbon.build_carbon_hourly) "
        "for complete hours with a published average grid intensity; gated.",
        ("site_id", "hour_start_s"),
        "date of hour_start_s (UTC)",
        dict(carbon.COLUMNS["carbon_hourly"]),
    )
    out["settlement"] = TableDoc(
        "settlement",
        "Settlement per 15-minute interval (transforms.settlement.build_settlement): "
        "interval_energy, the RT price (grid_prices kind rt) at the site's settlement point, "
        "the contract blocks of the site_configs version in force at the interval start, and "
        "the network hashprice in force then (grid_hashprice: the latest ts_s at or before "
        "it; before the first stored value, that config's policy.hashprice_usd_per_ph_day), "
        "so mining_revenue_usd values the PH-days delivered at it less that config's "
        "policy.pool_fee_fraction (what the pool pays; the fee is mining_pool_fee_usd, not in "
        "net_usd). An arriving hashprice re-settles every day it is in force on, up to the "
        "next stored value (revisions). Money is exact decimal, each component"
        " rounded half-even to cents, net_usd their sum; cash flows to the site are positive. "
        "Only intervals that are over and priced; gated like the other derived marts, and "
        "blocked with interval_energy when that day's energy fails its gate.",
        ("site_id", "interval_start_s"),
        "date of interval_start_s (UTC)",
        dict(settlement.COLUMNS["settlement"]),
    )
    out[REVISIONS.name] = TableDoc(
        REVISIONS.name,
        REVISIONS.doc,
        REVISIONS.key,
        "date of key_start_s (UTC), rewritten when that date gets a new revision",
        {c.name: c.doc for c in REVISIONS.columns},
    )
    return out


def render_markdown() -> str:
    lines = [
        "# Spillway marts",
        "",
        "Generated from the code by `spillway sink docs`; do not edit by hand.",
        "",
        'Read them with `spillway sql "SELECT ..."`, or open `views.duckdb` read-only '
        "(DuckDB, or SQLAlchemy `duckdb:///<path>/views.duckdb` with "
        '`connect_args={"read_only": True}`), or read the Parquet files under `parquet/` '
        "with any engine. Times are UTC epoch seconds (`_s`); units are in the column names "
        "and below.",
        "",
    ]
    for d in published_docs().values():
        lines += [
            f"## {d.name}",
            "",
            d.doc,
            "",
            f"Key: `{', '.join(d.key)}`. Partitions: {d.partition}.",
            "",
            *([d.contract, ""] if d.contract else []),
            "| column | meaning and unit |",
            "|---|---|",
        ]
        lines += [f"| `{c}` | {text} |" for c, text in d.columns.items()]
        lines.append("")
    return "\n".join(lines)
