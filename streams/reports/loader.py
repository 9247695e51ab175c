"""Thin loader: the published marts' Parquet files for one period (and site) into frames.

Where the files are (``Settings.marts_dir``):

- with a publication manifest (``_manifests/gen-*.json``, written by ``streams.marts``), the
  latest manifest's files for the table: older generations of a partition stay on disk for
  a while, so globbing would count their rows twice;
- otherwise every ``<marts>/<table>/**/*.parquet`` and ``<marts>/parquet/<table>/**/*.parquet``;
  rows repeated across files (same natural key) keep the last file's version.

Files under a ``date=YYYY-MM-DD`` folder (UTC date) outside the period are not opened.
Rows are then cut to the period's ``[start_s, end_s)`` on the table's time column and to
the site. Every read returns the files and row counts it used, for the report's sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from transforms.reports.errors import NothingPublished, ReportInputError
from transforms.reports.period import Period

TIME_COL: dict[str, str] = {
    "interval_energy": "interval_start_s",
    "settlement": "interval_start_s",
    "carbon_hourly": "hour_start_s",
    "site_power_1s": "ts_s",
    "site_power": "ts_s",
    "surplus_events": "ts_s",
    "curtailment_events": "ts_s",
    "grid_prices": "interval_start_s",
    "grid_carbon": "hour_start_s",
    "grid_hashprice": "ts_s",
}
"""Time column (UTC epoch seconds) that places a row in a period."""

KEYS: dict[str, tuple[str, ...]] = {
    "interval_energy": ("site_id", "interval_start_s"),
    "settlement": ("site_id", "interval_start_s"),
    "carbon_hourly": ("site_id", "hour_start_s"),
    "site_power_1s": ("site_id", "ts_s"),
    "site_power": ("site_id", "ts_s"),
    "surplus_events": ("event_id", "kind", "ts_s"),
    "curtailment_events": ("event_id", "kind", "ts_s"),
    "grid_prices": ("market", "settlement_point", "kind", "interval_start_s"),
    "grid_carbon": ("region", "kind", "hour_start_s"),
    "grid_hashprice": ("source", "ts_s"),
}
"""Natural key of each table (a row seen in several files is kept once)."""

ALIASES: dict[str, tuple[str, ...]] = {"site_power_1s": ("site_power_1s", "site_power")}
"""Names a table may be published under, first match wins (the sink calls it site_power)."""

_DATE_DIR = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})(?:/|$)")
_FILE = "_source_file"


@dataclass(frozen=True)
class LoadedTable:
    """One table's rows for the period, and where they came from."""

    table: str
    """Name asked for."""
    published_as: str
    files: tuple[str, ...]
    """Parquet files read, relative to the marts folder."""
    rows: int
    duplicates_dropped: int
    frame: pl.DataFrame
    how: str
    """``manifest gen N`` or ``glob``."""


def latest_manifest(marts: Path) -> tuple[int, dict[str, dict[str, str]]] | None:
    """(generation, table -> partition -> relative path) of the latest manifest, if any."""
    paths = sorted((marts / "_manifests").glob("gen-*.json"))
    if not paths:
        return None
    try:
        raw = json.loads(paths[-1].read_text())
        return int(raw["generation"]), {t: dict(u) for t, u in raw["tables"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportInputError(f"unreadable publication manifest {paths[-1]}: {exc}") from exc


def published_files(marts: Path, table: str) -> tuple[str, list[Path], str]:
    """(name found, files, how) for ``table`` or its aliases; empty list if none."""
    manifest = latest_manifest(marts)
    names = ALIASES.get(table, (table,))
    for name in names:
        if manifest is not None and manifest[1].get(name):
            files = sorted(marts / rel for rel in manifest[1][name].values())
            return name, files, f"manifest gen {manifest[0]}"
        found = sorted(
            {*marts.glob(f"{name}/**/*.parquet"), *marts.glob(f"parquet/{name}/**/*.parquet")}
        )
        if found:
            return name, found, "glob"
    return names[0], [], "manifest" if manifest is not None else "glob"


def _file_date(path: Path) -> date | None:
    m = _DATE_DIR.search(path.as_posix())
    return date.fromisoformat(m.group(1)) if m else None


def _rel(marts: Path, path: Path) -> str:
    try:
        return path.relative_to(marts).as_posix()
    except ValueError:
        return path.as_posix()


def _describe(period: Period) -> str:
    def iso(s: int) -> str:
        return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%MZ")

    return f"{period.label} ({period.tz}, {iso(period.start_s)} to {iso(period.end_s)})"


def load_table(
    marts: Path,
    table: str,
    period: Period,
    *,
    site_id: str | None = None,
    required: bool = True,
    columns: Sequence[str] | None = None,
) -> LoadedTable | None:
    """Rows of ``table`` in ``period`` (and ``site_id`` when the table has sites).

    ``columns`` reads only those (plus the key), e.g. the few a derivation needs out of a
    wide table. Raises :class:`NothingPublished` when ``required`` and there are no rows;
    returns None when not required.
    """
    if table not in TIME_COL:
        raise ReportInputError(f"unknown table {table!r}; known {sorted(TIME_COL)}")
    name, files, how = published_files(marts, table)
    dates = period.utc_dates()
    kept = [f for f in files if (_file_date(f) is None or _file_date(f) in dates)]
    missing = [f for f in kept if not f.is_file()]
    if missing:
        raise ReportInputError(
            f"{how} of {marts} lists {len(missing)} file(s) that do not "
            f"exist, e.g. {missing[0]}; republish the marts"
        )
    frame = _read(kept, name, period, site_id, columns) if kept else None
    if frame is None or frame.height == 0:
        if not required:
            return None
        raise NothingPublished(_nothing_message(marts, table, name, period, site_id, files, how))
    return _loaded(marts, table, name, kept, frame, how)


def _loaded(
    marts: Path, table: str, name: str, kept: list[Path], frame: pl.DataFrame, how: str
) -> LoadedTable:
    """A row seen in several files kept once (the last file's), sorted by the key."""
    keys = [k for k in KEYS[name] if k in frame.columns]
    before = frame.height
    frame = (
        frame.sort(_FILE, maintain_order=True)
        .unique(keys, keep="last", maintain_order=True)
        .sort(keys)
    )
    rel = tuple(_rel(marts, f) for f in kept)
    return LoadedTable(
        table, name, rel, frame.height, before - frame.height, frame.drop(_FILE), how
    )


def load_until(marts: Path, table: str, end_s: int) -> LoadedTable | None:
    """Every published row of ``table`` before ``end_s``, however old: a value in force
    over a period may have been published days before it (the network hashprice). None
    when there is none."""
    if table not in TIME_COL:
        raise ReportInputError(f"unknown table {table!r}; known {sorted(TIME_COL)}")
    name, files, how = published_files(marts, table)
    last = datetime.fromtimestamp(end_s, UTC).date()
    kept = [f for f in files if f.is_file() and ((d := _file_date(f)) is None or d <= last)]
    if not kept:
        return None
    try:
        frame = (
            pl.scan_parquet(kept, hive_partitioning=False, include_file_paths=_FILE)
            .filter(pl.col(TIME_COL[name]) < end_s)
            .collect()
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ReportInputError(
            f"cannot read published {name} files ({len(kept)}, e.g. {kept[0]}): {exc}"
        ) from exc
    if frame.height == 0:
        return None
    return _loaded(marts, table, name, kept, frame, how)


def _read(
    files: list[Path], name: str, period: Period, site_id: str | None, columns: Sequence[str] | None
) -> pl.DataFrame:
    t = pl.col(TIME_COL[name])
    try:
        lf = pl.scan_parquet(files, hive_partitioning=False, include_file_paths=_FILE)
        have = lf.collect_schema().names()
        lf = lf.filter((t >= period.start_s) & (t < period.end_s))
        if site_id is not None and "site_id" in have:
            lf = lf.filter(pl.col("site_id") == site_id)
        if columns is not None:
            absent = [c for c in columns if c not in have]
            if absent:
                raise ReportInputError(
                    f"published {name} lacks column(s) {absent} (e.g. {files[0]}); has {have}"
                )
            keep = dict.fromkeys([*KEYS[name], TIME_COL[name], *columns, _FILE])
            lf = lf.select([c for c in keep if c in have or c == _FILE])
        return lf.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ReportInputError(
            f"cannot read published {name} files ({len(files)}, e.g. {files[0]}): {exc}"
        ) from exc


def _nothing_message(
    marts: Path,
    table: str,
    name: str,
    period: Period,
    site_id: str | None,
    files: list[Path],
    how: str,
) -> str:
    where = f"site {site_id!r}, " if site_id else ""
    head = f"nothing published for {where}{_describe(period)} in table {table!r}"
    if not files:
        return (
            f"{head}: no Parquet files for {name!r} under {marts} ({how}); run the sink "
            "(`spillway sink`), which publishes the marts"
        )
    dated = sorted(d for d in (_file_date(f) for f in files) if d is not None)
    span = f"; published UTC dates {dated[0]} to {dated[-1]}" if dated else ""
    return f"{head}: {len(files)} file(s) under {marts} ({how}) hold no rows for it{span}"


def load_period(
    marts: Path, tables: dict[str, bool], period: Period, *, site_id: str | None = None
) -> dict[str, LoadedTable]:
    """Several tables at once: ``{table: required}``; optional absent tables are left out."""
    if not marts.is_dir():
        raise NothingPublished(
            f"marts folder {marts} does not exist: nothing is published "
            "yet (run `spillway sink`, or pass --marts)"
        )
    out: dict[str, LoadedTable] = {}
    for table, required in tables.items():
        got = load_table(marts, table, period, site_id=site_id, required=required)
        if got is not None:
            out[table] = got
    return out
