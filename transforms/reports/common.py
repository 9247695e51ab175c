"""Pieces shared by the settlement and carbon reports: sources, site choice, gates, local
time columns, exact totals (pure: the gate is passed in)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from transforms.gates import GateResult
from transforms.reports.errors import NothingPublished, ReportInputError

Gate = Callable[[str, pl.DataFrame], GateResult]
"""``transforms.gates.run_gate`` or a stand-in with the same signature."""

LOCAL_FMT = "%Y-%m-%dT%H:%M:%S%:z"
"""Local timestamps in CSV and HTML: ISO 8601 with the offset, so the repeated fall-back
hour reads 01:00-05:00 then 01:00-06:00."""


@dataclass(frozen=True)
class Source:
    """One input behind a report: a published table (files, rows) or a reference file."""

    table: str
    files: tuple[str, ...]
    rows: int
    note: str = ""


def choose_site(frame: pl.DataFrame, site_id: str | None, what: str) -> str:
    """The one site to report: ``site_id`` if given (it must have rows), else the only one."""
    if "site_id" not in frame.columns:
        raise ReportInputError(f"{what}: no site_id column; has {frame.columns}")
    sites = sorted(frame["site_id"].unique().drop_nulls().to_list())
    if site_id is not None:
        if site_id not in sites:
            raise NothingPublished(
                f"{what}: no rows for site {site_id!r}; sites present: {sites or 'none'}"
            )
        return site_id
    if not sites:
        raise NothingPublished(f"{what}: no rows")
    if len(sites) > 1:
        raise ReportInputError(f"{what}: several sites {sites}; choose one with --site")
    return str(sites[0])


def need(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportInputError(f"{what}: missing column(s) {missing}; has {frame.columns}")


def run_gates(gate: Gate, frames: dict[str, pl.DataFrame | None]) -> list[GateResult]:
    """One gate result per mart frame given (None frames are skipped)."""
    return [gate(name, frame) for name, frame in frames.items() if frame is not None]


def local_text(col: str) -> pl.Expr:
    return pl.col(col).dt.strftime(LOCAL_FMT)


def decimal_totals(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, Decimal]:
    """Exact sums of Decimal columns (polars keeps the scale; no float on the way)."""
    row = frame.select(pl.col(c).sum() for c in columns).row(0, named=True)
    out: dict[str, Decimal] = {}
    for c in columns:
        v = row[c]
        if not isinstance(v, Decimal):
            raise ReportInputError(
                f"total of {c!r} is {type(v).__name__}, not Decimal: the column must be pl.Decimal"
            )
        out[c] = v
    return out
