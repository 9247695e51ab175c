"""Publication for BI: immutable Parquet partitions plus a read-only DuckDB file of views.

The sink's DuckDB file is locked by its one writer, so BI never reads it. Instead, each
publication (run by the sink between batches, on its own connection) writes every
partition that changed since the last one as a NEW file, never rewriting a published one:

    <marts>/parquet/<table>/date=YYYY-MM-DD/part-HH-g<generation>.parquet   (sink tables)
    <marts>/parquet/<mart>/date=YYYY-MM-DD/part-g<generation>.parquet       (derived marts)
    <marts>/parquet/mart_revisions/date=YYYY-MM-DD/part-g<generation>.parquet

then a manifest (``_manifests/gen-<n>.json``: which file is current for each partition)
and ``views.duckdb``: one view per table over exactly the manifest's files, with a comment
on every view and column (units). Files are written to a temporary name and renamed, so a
reader sees the previous generation or the new one, never half of one. Files that no
manifest of the last ``keep_generations`` uses are deleted, so queries that started on an
older generation keep working meanwhile.

Derived marts (interval_energy, carbon_hourly, settlement) pass a Great Expectations gate
(``transforms.gates.run_gate``) first; a failing gate blocks that partition (the previous
version stays published), keeps the report under ``_gates/`` and emits a ``data_quality``
Alert. Settlement is also blocked when its day's interval energy is, or when its inputs are
refused (``SettlementInputError``).

A derived day is rebuilt when its site power changed, or (for days with power) when grid
carbon, grid prices or a site config that applies to it changed. Each rebuilt partition is
compared with the version it replaces (``revisions.diff_published``): every changed row
becomes a ``mart_revisions`` row, stored in the sink database (rows of an unfinished
generation are dropped by the next publication, which reuses its number) and published
like the rest, one file per date of the revised keys.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from schemas.events import Alert
from streams.marts.derived import (
    LOOKAHEAD_S,
    complete_hours_carbon,
    day_bounds,
    day_interval_energy,
    day_of,
    empty_derived,
    hourly_intensity,
)
from streams.marts.docs import published_docs, render_markdown
from streams.marts.revisions import diff_published
from streams.marts.settle import PRICE_COLUMNS, settle_intervals
from streams.marts.tables import BY_NAME, REVISIONS, TABLES, publish_select
from transforms.settlement import SettlementInputError

Gate = Callable[[str, pl.DataFrame], Any]
"""``transforms.gates.run_gate``: returns an object with ``success`` and ``report()``."""

VIEWS_FILE = "views.duckdb"
DOCS_FILE = "README.md"


@dataclass
class PublishResult:
    generation: int
    files: list[str] = field(default_factory=list)
    """Relative paths written in this generation."""
    blocked: list[str] = field(default_factory=list)
    """``<mart>:<date>`` partitions a gate kept back."""
    reports: list[Path] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    skipped: bool = False
    """Nothing had changed: no new generation."""
    revisions: int = 0
    """Published derived-mart rows this generation restated (``mart_revisions`` rows)."""


@dataclass
class Manifest:
    generation: int = 0
    published_at_s: float = 0.0
    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    """table -> partition unit (``YYYY-MM-DD`` or ``YYYY-MM-DD/HH``) -> relative path."""


def _manifest_dir(marts: Path) -> Path:
    return marts / "_manifests"


def load_manifest(marts: Path) -> Manifest:
    """The latest manifest, or an empty one."""
    paths = sorted(_manifest_dir(marts).glob("gen-*.json"))
    if not paths:
        return Manifest()
    raw = json.loads(paths[-1].read_text())
    return Manifest(int(raw["generation"]), float(raw["published_at_s"]), raw["tables"])


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy_parquet(con: duckdb.DuckDBPyConnection, select: str, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    con.execute(f"COPY ({select}) TO {_sql_path(tmp)} (FORMAT parquet)")
    os.replace(tmp, final)


def _write_frame(frame: pl.DataFrame, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, final)


def _default_gate(mart: str, frame: pl.DataFrame) -> Any:
    from transforms.gates import run_gate  # GX takes seconds to import: only when gating

    return run_gate(mart, frame)


def publish(
    con: duckdb.DuckDBPyConnection,
    marts: Path,
    *,
    gate: Gate | None = None,
    alert: Callable[[Alert], None] | None = None,
    keep_generations: int = 5,
    now_s: float | None = None,
) -> PublishResult:
    """Publish every partition changed since the last publication (see the module doc).

    ``con`` is the sink's connection (the only writer); ``gate`` defaults to
    ``transforms.gates.run_gate``; ``alert`` receives the data_quality alerts.
    """
    now = time.time() if now_s is None else now_s
    gate = gate or _default_gate
    dirty = con.execute("SELECT table_name, hour_s FROM sink_dirty ORDER BY ALL").fetchall()
    prev = load_manifest(marts)
    views = marts / VIEWS_FILE
    if not dirty and prev.generation and views.exists():
        return PublishResult(prev.generation, skipped=True)
    gen = prev.generation + 1
    result = PublishResult(gen)
    tables = {t: dict(units) for t, units in prev.tables.items()}
    # Revisions of a generation that crashed before its manifest: this one replaces it.
    con.execute(f"DELETE FROM {REVISIONS.name} WHERE generation_after >= ?", [gen])

    for name, hour in dirty:
        table = BY_NAME[name]
        day = day_of(hour)
        hh = (hour % 86_400) // 3600
        rel = f"parquet/{name}/date={day.isoformat()}/part-{hh:02d}-g{gen:06d}.parquet"
        select = (
            f"SELECT {publish_select(table)} FROM {name} WHERE {table.time_col} >= "
            f"{hour} AND {table.time_col} < {hour + 3600} ORDER BY {', '.join(table.key)}"
        )
        _copy_parquet(con, select, marts / rel)
        tables.setdefault(name, {})[f"{day.isoformat()}/{hh:02d}"] = rel
        result.files.append(rel)

    power_days = {day_of(h) for n, h in dirty if n == "site_power"}
    with_power = _days_with_power(tables)
    inputs_days = {day_of(h) for n, h in dirty if n in ("grid_carbon", "grid_prices")}
    inputs_days |= _config_days(con, [h for n, h in dirty if n == "site_configs"], with_power)
    revisions: list[pl.DataFrame] = []
    for day in sorted(power_days | (inputs_days & with_power)):
        _publish_derived(con, marts, day, gen, now, gate, alert, tables, result, revisions)
    _publish_revisions(con, marts, gen, revisions, tables, result)

    _manifest_dir(marts).mkdir(parents=True, exist_ok=True)
    _atomic_write_text(
        _manifest_dir(marts) / f"gen-{gen:06d}.json",
        json.dumps({"generation": gen, "published_at_s": now, "tables": tables}, indent=1),
    )
    build_views(marts, tables, gen, now)
    _atomic_write_text(marts / DOCS_FILE, render_markdown())
    done = pl.DataFrame(dirty, schema={"table_name": pl.String, "hour_s": pl.Int64}, orient="row")
    con.register("_published", done)
    try:
        con.execute(
            "DELETE FROM sink_dirty WHERE (table_name, hour_s) IN "
            "(SELECT (table_name, hour_s) FROM _published)"
        )
    finally:
        con.unregister("_published")
    collect_garbage(marts, keep_generations)
    return result


def _days_with_power(tables: dict[str, dict[str, str]]) -> set[date]:
    return {date.fromisoformat(u.split("/")[0]) for u in tables.get("site_power", {})}


def _config_days(
    con: duckdb.DuckDBPyConnection, hours: list[int], with_power: set[date]
) -> set[date]:
    """Days a new config version can change: from its ``updated_s`` on (the version in
    force at an interval is the latest at or before it), or every day when it is its
    site's earliest version (which also covers the intervals before it)."""
    if not hours:
        return set()
    firsts = [
        int(r[0]) // 3600 * 3600
        for r in con.execute("SELECT min(updated_s) FROM site_configs GROUP BY site_id").fetchall()
    ]
    if set(firsts) & set(hours):
        return set(with_power)
    since = day_of(min(hours))
    return {d for d in with_power if d >= since}


_GEN = re.compile(r"-g(\d+)\.parquet$")


def _generation_of(rel: str) -> int:
    m = _GEN.search(rel)
    if m is None:
        raise ValueError(f"published file {rel!r} has no -g<generation> suffix")
    return int(m.group(1))


def _publish_derived(
    con: duckdb.DuckDBPyConnection,
    marts: Path,
    day: date,
    gen: int,
    now: float,
    gate: Gate,
    alert: Callable[[Alert], None] | None,
    tables: dict[str, dict[str, str]],
    result: PublishResult,
    revisions: list[pl.DataFrame],
) -> None:
    start, end = day_bounds(day)
    power = con.sql(
        f"SELECT * FROM site_power WHERE ts_s >= {start} AND ts_s < {end + LOOKAHEAD_S}"
    ).pl()
    last = con.sql("SELECT site_id, max(ts_s) AS last_ts_s FROM site_power GROUP BY site_id").pl()
    energy = day_interval_energy(power, day, last)
    carbon_rows = con.sql(
        "SELECT region, kind, hour_start_s, intensity_g_per_kwh "
        f"FROM grid_carbon WHERE hour_start_s >= {start} "
        f"AND hour_start_s < {end}"
    ).pl()
    marts_frames = {
        "interval_energy": energy,
        "carbon_hourly": complete_hours_carbon(energy, hourly_intensity(carbon_rows)),
    }
    ctx = _Derived(con, marts, day, gen, now, gate, alert, tables, result, revisions)
    published: dict[str, bool] = {}
    for mart, frame in marts_frames.items():
        if frame is not None and frame.height:
            published[mart] = ctx.publish(mart, frame)
    configs = con.sql("SELECT * FROM site_configs").pl()
    if energy.height == 0 or configs.height == 0:
        return
    prices = con.sql(
        f"SELECT {', '.join(PRICE_COLUMNS)} FROM grid_prices WHERE kind = 'rt' "
        f"AND interval_start_s >= {start} AND interval_start_s < {end}"
    ).pl()
    try:
        settlement = settle_intervals(energy, prices, configs)
    except SettlementInputError as exc:
        ctx.publish(
            "settlement", energy, refused=f"gate settlement: NOT RUN, inputs refused: {exc}"
        )
        return
    if settlement is None:
        return
    if not published.get("interval_energy", False):
        ctx.publish(
            "settlement",
            settlement,
            refused="gate settlement: NOT RUN, the day's interval_energy failed its gate",
        )
        return
    ctx.publish("settlement", settlement)


@dataclass
class _Derived:
    """Publication of one day's derived marts within one generation."""

    con: duckdb.DuckDBPyConnection
    marts: Path
    day: date
    gen: int
    now: float
    gate: Gate
    alert: Callable[[Alert], None] | None
    tables: dict[str, dict[str, str]]
    result: PublishResult
    revisions: list[pl.DataFrame]

    def publish(self, mart: str, frame: pl.DataFrame, refused: str | None = None) -> bool:
        """Gate, then write the partition and record its revisions; or block and alert.
        ``refused``: block without gating, with this as the report."""
        day, gen, result = self.day.isoformat(), self.gen, self.result
        unit = f"{mart}:{day}"
        report_path = self.marts / "_gates" / f"{mart}-{day}-g{gen:06d}.txt"
        report_path.parent.mkdir(parents=True, exist_ok=True)
        passed, report = (False, refused) if refused else _run_gate(self.gate, mart, frame)
        _atomic_write_text(report_path, report + "\n")
        result.reports.append(report_path)
        if passed:
            old = self.tables.get(mart, {}).get(day)
            if old is not None:
                self.revisions.append(
                    diff_published(
                        mart,
                        pl.read_parquet(self.marts / old),
                        frame,
                        generation_before=_generation_of(old),
                        generation_after=gen,
                        revised_at_s=self.now,
                    )
                )
            rel = f"parquet/{mart}/date={day}/part-g{gen:06d}.parquet"
            _write_frame(frame, self.marts / rel)
            self.tables.setdefault(mart, {})[day] = rel
            result.files.append(rel)
            return True
        result.blocked.append(unit)
        sites = sorted(frame["site_id"].unique().to_list())
        site = sites[0] if len(sites) == 1 else "all"
        found = Alert(
            alert_id=f"{site}/data_quality/{unit}/{int(self.now)}",
            site_id=site,
            condition="data_quality",
            subject=unit,
            severity="warning",
            state="firing",
            started_at_s=self.now,
            message=(
                f"quality gate failed for {mart} on {day}: publication of that "
                f"partition blocked (previous version stays); report {report_path}"
            ),
            context={
                "mart": mart,
                "date": day,
                "generation": gen,
                "report": str(report_path),
                "rows": frame.height,
            },
        )
        result.alerts.append(found)
        if self.alert is not None:
            self.alert(found)
        return False


def _publish_revisions(
    con: duckdb.DuckDBPyConnection,
    marts: Path,
    gen: int,
    revisions: list[pl.DataFrame],
    tables: dict[str, dict[str, str]],
    result: PublishResult,
) -> None:
    """Store this generation's revisions (one transaction; idempotent on the key) and
    rewrite the ``mart_revisions`` partition of every date they touch."""
    frame = pl.concat(revisions) if revisions else pl.DataFrame()
    if frame.height == 0:
        return
    cols = ", ".join(REVISIONS.names)
    con.begin()
    try:
        con.register("_revisions", frame)
        con.execute(
            f"INSERT OR REPLACE INTO {REVISIONS.name} ({cols}) SELECT {cols} FROM _revisions"
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister("_revisions")
    result.revisions += frame.height
    for day in sorted({day_of(k) for k in frame["key_start_s"].to_list()}):
        start, end = day_bounds(day)
        rel = f"parquet/{REVISIONS.name}/date={day.isoformat()}/part-g{gen:06d}.parquet"
        _copy_parquet(
            con,
            f"SELECT {cols} FROM {REVISIONS.name} WHERE key_start_s >= "
            f"{start} AND key_start_s < {end} ORDER BY ALL",
            marts / rel,
        )
        tables.setdefault(REVISIONS.name, {})[day.isoformat()] = rel
        result.files.append(rel)


def _run_gate(gate: Gate, mart: str, frame: pl.DataFrame) -> tuple[bool, str]:
    """(passed, report). A gate that could not run blocks like a failing one."""
    try:
        res = gate(mart, frame)
    except Exception as exc:  # noqa: BLE001 - a broken gate must block, not crash the sink
        return False, f"gate {mart}: BROKEN, data not judged: {type(exc).__name__}: {exc}"
    return bool(res.success), str(res.report())


def build_views(
    marts: Path, tables: dict[str, dict[str, str]], generation: int, published_at_s: float
) -> Path:
    """Write ``views.duckdb`` (temp file, then rename): one documented view per table."""
    docs = published_docs()
    final = marts / VIEWS_FILE
    tmp = marts / f".views-g{generation:06d}-{uuid.uuid4().hex[:6]}.duckdb"
    vcon = duckdb.connect(str(tmp))
    try:
        vcon.execute("BEGIN")  # one commit for the ~200 statements below
        for name, d in docs.items():
            files = sorted(str((marts / rel).resolve()) for rel in tables.get(name, {}).values())
            if files:
                listed = ", ".join(_sql_path(Path(f)) for f in files)
                body = f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false)"
            else:
                body = _empty_select(name)
            vcon.execute(f"CREATE VIEW {name} AS {body}")
            vcon.execute(f"COMMENT ON VIEW {name} IS {_lit(d.doc)}")
            for col, text in d.columns.items():
                vcon.execute(f"COMMENT ON COLUMN {name}.{col} IS {_lit(text)}")
        catalog = pl.DataFrame(
            [(t, c, text) for t, d in docs.items() for c, text in d.columns.items()],
            schema={"table_name": pl.String, "column_name": pl.String, "doc": pl.String},
            orient="row",
        )
        vcon.register("_catalog", catalog)
        vcon.execute("CREATE TABLE marts_catalog AS SELECT * FROM _catalog")
        vcon.execute(
            "CREATE TABLE marts_publication AS SELECT "
            f"{generation}::BIGINT AS generation, {published_at_s}::DOUBLE "
            "AS published_at_s"
        )
        vcon.execute("COMMIT")
        vcon.execute("CHECKPOINT")
    finally:
        vcon.close()
    os.replace(tmp, final)
    return final


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@cache
def _empty_select(name: str) -> str:
    """A typed zero-row select, so every view exists with its columns before any data."""
    empties = empty_derived()
    if name in empties:
        with duckdb.connect() as tmp:
            tmp.register("_e", empties[name])
            cols = tmp.execute("DESCRIBE SELECT * FROM _e").fetchall()
        typed = [(c[0], c[1]) for c in cols]
    else:
        table = REVISIONS if name == REVISIONS.name else BY_NAME[name]
        typed = [(c.name, c.sql) for c in table.columns] + [
            (c.name, "DOUBLE") for c in table.derived
        ]
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in typed) + " WHERE false"


def collect_garbage(marts: Path, keep_generations: int) -> list[Path]:
    """Delete Parquet files and manifests that none of the last ``keep_generations``
    manifests uses; returns what was deleted."""
    manifests = sorted(_manifest_dir(marts).glob("gen-*.json"))
    keep = manifests[-keep_generations:]
    used: set[Path] = set()
    for m in keep:
        for units in json.loads(m.read_text())["tables"].values():
            used.update((marts / rel).resolve() for rel in units.values())
    removed: list[Path] = []
    for path in (marts / "parquet").rglob("*.parquet"):
        if path.resolve() not in used:
            path.unlink()
            removed.append(path)
    for m in manifests[:-keep_generations]:
        m.unlink()
        removed.append(m)
    # Leftovers of a publication that crashed; only the sink publishes, so none is in use.
    for tmp in [*marts.glob(".views-*.duckdb*"), *marts.rglob(".*.tmp")]:
        tmp.unlink()
        removed.append(tmp)
    return removed


def published_tables() -> list[str]:
    """Names of every view in ``views.duckdb``."""
    return [
        *(t.name for t in TABLES),
        "interval_energy",
        "carbon_hourly",
        "settlement",
        REVISIONS.name,
    ]
