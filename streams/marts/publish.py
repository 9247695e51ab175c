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
carbon, grid prices, a hashprice in force on it (a late value re-settles every later day
that fell back on an older one) or a site config that applies to it changed. Each rebuilt
partition is compared with the version it replaces (``revisions.diff_published``): every
changed row becomes a ``mart_revisions`` row, stored in the sink database (rows of an
unfinished generation are dropped by the next publication, which reuses its number) and
published like the rest, one file per date of the revised keys.
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
from streams.marts.revisions import TIME_KEYS, diff_published
from streams.marts.settle import (
    HASHPRICE_COLUMNS,
    PRICE_COLUMNS,
    hashprice_days,
    settle_intervals,
)
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
    provisional: list[str] = field(default_factory=list)
    """``<mart>:<site>:<key start>: <why>`` rows published provisionally."""
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
    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``<mart>:<date>`` held back by its gate -> ``since_s``, ``reason``, ``report``."""
    provisional: list[dict[str, Any]] = field(default_factory=list)
    """Published rows that failed a row-level expectation: ``mart``, ``site_id``,
    ``key_start_s``, ``reason``."""


def _manifest_dir(marts: Path) -> Path:
    return marts / "_manifests"


def load_manifest(marts: Path) -> Manifest:
    """The latest manifest, or an empty one."""
    paths = sorted(_manifest_dir(marts).glob("gen-*.json"))
    if not paths:
        return Manifest()
    raw = json.loads(paths[-1].read_text())
    return Manifest(
        int(raw["generation"]),
        float(raw["published_at_s"]),
        raw["tables"],
        raw.get("held", {}),
        raw.get("provisional", []),
    )


HELD_NOTE = "Held by its quality gate:"
PROVISIONAL_NOTE = "Provisional:"
MAX_NOTES = 20


def _utc_iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def provisional_in(
    m: Manifest, start_s: int, end_s: int, site_id: str | None = None, marts: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The provisional rows of ``m`` in ``[start_s, end_s)`` (of ``site_id``, of ``marts``)."""
    return [
        p
        for p in m.provisional
        if start_s <= int(p["key_start_s"]) < end_s
        and (site_id is None or p["site_id"] == site_id)
        and (not marts or p["mart"] in marts)
    ]


def status_notes(
    m: Manifest, start_s: int, end_s: int, site_id: str | None = None, marts: tuple[str, ...] = ()
) -> list[str]:
    """Lines saying which partitions of ``[start_s, end_s)`` a gate holds back and which rows
    are published provisionally, with why (``marts``: only these; empty: all). Held lines
    come first and start with ``HELD_NOTE``; provisional ones with ``PROVISIONAL_NOTE``."""
    out: list[str] = []
    for unit, h in sorted(m.held.items()):
        mart, day = unit.split(":", 1)
        d0, d1 = day_bounds(date.fromisoformat(day))
        if d1 <= start_s or d0 >= end_s or (marts and mart not in marts):
            continue
        out.append(
            f"{HELD_NOTE} {mart} for {day} (UTC date) since {_utc_iso(float(h['since_s']))}: "
            f"{h['reason']}. Its rows are not published (the previous version, if any, "
            f"stays) although their data was received; report {h['report']}"
        )
    rows = provisional_in(m, start_s, end_s, site_id, marts)
    out += [
        f"{PROVISIONAL_NOTE} {p['mart']} {p['site_id']} {_utc_iso(int(p['key_start_s']))}: "
        f"{p['reason']}"
        for p in rows[:MAX_NOTES]
    ]
    if len(rows) > MAX_NOTES:
        out.append(
            f"{PROVISIONAL_NOTE} {len(rows) - MAX_NOTES} more provisional row(s) "
            "(views.duckdb table marts_status lists them all)"
        )
    return out


def current_status(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(held partitions, provisional rows) as the sink database holds them now."""
    held = {
        str(unit): {"since_s": float(since), "reason": str(reason), "report": str(report)}
        for unit, since, reason, report in con.execute(
            "SELECT unit, started_at_s, reason, report FROM mart_holds ORDER BY unit"
        ).fetchall()
    }
    provisional = [
        {"mart": str(m), "site_id": str(site), "key_start_s": int(key), "reason": str(r)}
        for m, site, key, r in con.execute(
            "SELECT mart, site_id, key_start_s, reason FROM mart_provisional ORDER BY ALL"
        ).fetchall()
    ]
    return held, provisional


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
    con.execute("UPDATE power_restatements SET generation = NULL WHERE generation >= ?", [gen])

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
    inputs_days |= _hashprice_days(con, [h for n, h in dirty if n == "grid_hashprice"], with_power)
    revisions = restated_seconds(con, marts, prev, gen, now)
    for day in sorted(power_days | (inputs_days & with_power)):
        _publish_derived(con, marts, day, gen, now, gate, alert, tables, result, revisions)
    _publish_revisions(con, marts, gen, revisions, tables, result)

    held, provisional = current_status(con)
    _manifest_dir(marts).mkdir(parents=True, exist_ok=True)
    _atomic_write_text(
        _manifest_dir(marts) / f"gen-{gen:06d}.json",
        json.dumps(
            {
                "generation": gen,
                "published_at_s": now,
                "tables": tables,
                "held": held,
                "provisional": provisional,
            },
            indent=1,
        ),
    )
    build_views(marts, tables, gen, now, Manifest(gen, now, tables, held, provisional))
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


def restated_seconds(
    con: duckdb.DuckDBPyConnection, marts: Path, prev: Manifest, gen: int, now: float
) -> list[pl.DataFrame]:
    """``mart_revisions`` rows for the published seconds of ``site_power`` that restatements
    (late readings) replaced since the last publication; marks those restatements as
    published in ``gen``. A second never published before is not a revision."""
    pending = con.sql(
        "SELECT DISTINCT site_id, ts_s FROM power_restatements WHERE generation IS NULL"
    ).pl()
    if pending.height == 0:
        return []
    out: list[pl.DataFrame] = []
    hours = pending.with_columns((pl.col("ts_s") // 3600 * 3600).alias("_hour"))
    for (hour,), keys in hours.group_by("_hour"):
        unit = f"{day_of(int(hour)).isoformat()}/{(int(hour) % 86_400) // 3600:02d}"
        old_rel = prev.tables.get("site_power", {}).get(unit)
        if old_rel is None:
            continue
        keys = keys.select("site_id", "ts_s")
        old = pl.read_parquet(marts / old_rel).join(keys, on=["site_id", "ts_s"], how="semi")
        con.register("_restated_keys", keys)
        try:
            new = con.sql(
                f"SELECT {publish_select(BY_NAME['site_power'])} FROM site_power "
                "SEMI JOIN _restated_keys USING (site_id, ts_s)"
            ).pl()
        finally:
            con.unregister("_restated_keys")
        out.append(
            diff_published(
                "site_power",
                old,
                new,
                generation_before=_generation_of(old_rel),
                generation_after=gen,
                revised_at_s=now,
            )
        )
    con.execute("UPDATE power_restatements SET generation = ? WHERE generation IS NULL", [gen])
    return out


def _days_with_power(tables: dict[str, dict[str, str]]) -> set[date]:
    return {date.fromisoformat(u.split("/")[0]) for u in tables.get("site_power", {})}


def _hashprice_days(
    con: duckdb.DuckDBPyConnection, hours: list[int], with_power: set[date]
) -> set[date]:
    """Days a stored hashprice value can change: its own and the later ones that fell
    back on an older value (``settle.hashprice_days``)."""
    if not hours:
        return set()
    starts = [r[0] for r in con.execute("SELECT DISTINCT ts_s FROM grid_hashprice").fetchall()]
    return hashprice_days(hours, starts, with_power)


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
    # From the second before the day: its POI register reading opens the day's first step
    # (day_interval_energy keeps only the day's intervals).
    power = con.sql(
        f"SELECT * FROM site_power WHERE ts_s >= {start - 1} AND ts_s < {end + LOOKAHEAD_S}"
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
    energy_mart = "interval_energy"
    if energy.height:
        published[energy_mart] = ctx.publish(energy_mart, energy)
    # An interval published provisionally makes what is built on it provisional too.
    upstream = ctx.provisional.get(energy_mart, {})
    carbon = marts_frames["carbon_hourly"]
    if carbon is not None and carbon.height:
        hourly = {
            (s, k // 3600 * 3600): f"{energy_mart} provisional: {r}"
            for (s, k), r in upstream.items()
        }
        ctx.publish("carbon_hourly", carbon, inherited=hourly)
    configs = con.sql("SELECT * FROM site_configs").pl()
    if energy.height == 0 or configs.height == 0:
        return
    prices = con.sql(
        f"SELECT {', '.join(PRICE_COLUMNS)} FROM grid_prices WHERE kind = 'rt' "
        f"AND interval_start_s >= {start} AND interval_start_s < {end}"
    ).pl()
    # Every value up to the day's end: the one in force at its start may be days older.
    hashprices = con.sql(
        f"SELECT {', '.join(HASHPRICE_COLUMNS)} FROM grid_hashprice WHERE ts_s < {end}"
    ).pl()
    try:
        settlement = settle_intervals(energy, prices, configs, hashprices=hashprices)
    except SettlementInputError as exc:
        ctx.publish(
            "settlement", energy, refused=f"gate settlement: NOT RUN, inputs refused: {exc}"
        )
        return
    if settlement is None:
        return
    if not published.get(energy_mart, False):
        ctx.publish(
            "settlement",
            settlement,
            refused="gate settlement: NOT RUN, the day's interval_energy failed its gate",
        )
        return
    inherited = {key: f"{energy_mart} provisional: {r}" for key, r in upstream.items()}
    ctx.publish("settlement", settlement, inherited=inherited)


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
    provisional: dict[str, dict[tuple[str, int], str]] = field(default_factory=dict)
    """mart -> (site, key start) -> why, for the rows published provisionally this day."""

    def publish(
        self,
        mart: str,
        frame: pl.DataFrame,
        refused: str | None = None,
        inherited: dict[tuple[str, int], str] | None = None,
    ) -> bool:
        """Gate, then write the partition (rows that failed a row-level expectation, or are
        built on such rows (``inherited``), marked provisional with why) and record its
        revisions; or hold it back and alert once. ``refused``: hold without gating, with
        this as the report."""
        day, gen, result = self.day.isoformat(), self.gen, self.result
        unit = f"{mart}:{day}"
        report_path = self.marts / "_gates" / f"{mart}-{day}-g{gen:06d}.txt"
        report_path.parent.mkdir(parents=True, exist_ok=True)
        verdict = _Verdict(False, refused, {}) if refused else _run_gate(self.gate, mart, frame)
        _atomic_write_text(report_path, verdict.report + "\n")
        result.reports.append(report_path)
        if not verdict.publishable:
            result.blocked.append(unit)
            self._hold(mart, unit, frame, verdict.report, report_path)
            return False
        rows = dict(inherited or {})
        for key, why in verdict.provisional.items():
            rows[key] = f"{why}; {rows[key]}" if key in rows else why
        keys = set(zip(frame["site_id"].to_list(), frame[_time_key(mart)].to_list(), strict=True))
        rows = {k: r for k, r in rows.items() if k in keys}
        self.provisional[mart] = rows
        _record_provisional(self.con, mart, day, gen, rows)
        result.provisional += [f"{mart}:{s}:{k}: {r}" for (s, k), r in sorted(rows.items())]
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
        self._release(unit)
        return True

    def _hold(
        self, mart: str, unit: str, frame: pl.DataFrame, report: str, report_path: Path
    ) -> None:
        """Record the held partition; alert only when it was not held already (one alert
        per condition, from when it started until it resolves)."""
        reason = _failed_lines(report)
        held = self.con.execute("SELECT alert_id FROM mart_holds WHERE unit = ?", [unit]).fetchone()
        if held is not None:
            self.con.execute(
                "UPDATE mart_holds SET reason = ?, report = ? WHERE unit = ?",
                [reason, str(report_path), unit],
            )
            return
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
                f"quality gate failed for {mart} on {self.day.isoformat()}: publication of "
                f"that partition held (previous version stays): {reason}; report {report_path}"
            ),
            context={
                "mart": mart,
                "date": self.day.isoformat(),
                "generation": self.gen,
                "report": str(report_path),
                "rows": frame.height,
            },
        )
        self.con.execute(
            "INSERT INTO mart_holds VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                unit,
                mart,
                self.day.isoformat(),
                site,
                found.alert_id,
                self.now,
                reason,
                str(report_path),
            ],
        )
        self.result.alerts.append(found)
        if self.alert is not None:
            self.alert(found)

    def _release(self, unit: str) -> None:
        """A held partition published: its one alert resolves."""
        row = self.con.execute(
            "SELECT alert_id, site_id, mart, day, started_at_s, reason FROM mart_holds "
            "WHERE unit = ?",
            [unit],
        ).fetchone()
        if row is None:
            return
        alert_id, site, mart, day, started, reason = row
        self.con.execute("DELETE FROM mart_holds WHERE unit = ?", [unit])
        done = Alert(
            alert_id=str(alert_id),
            site_id=str(site),
            condition="data_quality",
            subject=unit,
            severity="warning",
            state="resolved",
            started_at_s=float(started),
            ended_at_s=self.now,
            message=f"{mart} on {day} published in generation {self.gen} (held since "
            f"{float(started):.0f} for: {reason})",
            context={"mart": str(mart), "date": str(day), "generation": self.gen},
        )
        self.result.alerts.append(done)
        if self.alert is not None:
            self.alert(done)


def _time_key(mart: str) -> str:
    return TIME_KEYS[mart]


def _failed_lines(report: str) -> str:
    """The failed expectations of a gate report, on one line (the report's head if none)."""
    lines = report.splitlines()
    failed = [ln.strip().removeprefix("FAIL ").strip() for ln in lines if "FAIL " in ln[:8]]
    return "; ".join(failed) if failed else (lines[0] if lines else "gate failed")


def _record_provisional(
    con: duckdb.DuckDBPyConnection,
    mart: str,
    day: str,
    gen: int,
    rows: dict[tuple[str, int], str],
) -> None:
    """Replace the provisional rows of (mart, day) with this publication's."""
    con.execute("DELETE FROM mart_provisional WHERE mart = ? AND day = ?", [mart, day])
    if rows:
        con.executemany(
            "INSERT OR REPLACE INTO mart_provisional VALUES (?, ?, ?, ?, ?, ?)",
            [[mart, s, k, day, r, gen] for (s, k), r in sorted(rows.items())],
        )


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


@dataclass(frozen=True)
class _Verdict:
    publishable: bool
    report: str
    provisional: dict[tuple[str, int], str]
    """(site, key start) -> why, for rows published provisionally."""


def _run_gate(gate: Gate, mart: str, frame: pl.DataFrame) -> _Verdict:
    """A gate that could not run holds the partition like a failing one. A gate result
    without ``publishable`` (a stand-in) is judged on ``success`` alone."""
    try:
        res = gate(mart, frame)
    except Exception as exc:  # noqa: BLE001 - a broken gate must block, not crash the sink
        return _Verdict(
            False, f"gate {mart}: BROKEN, data not judged: {type(exc).__name__}: {exc}", {}
        )
    rows = {(r.site_id, r.key_start_s): r.reason for r in getattr(res, "provisional", ())}
    ok = bool(getattr(res, "publishable", res.success))
    return _Verdict(ok, str(res.report()), rows if ok else {})


def build_views(
    marts: Path,
    tables: dict[str, dict[str, str]],
    generation: int,
    published_at_s: float,
    status: Manifest | None = None,
) -> Path:
    """Write ``views.duckdb`` (temp file, then rename): one documented view per table, and
    ``marts_status``: the held partitions and provisional rows of this generation."""
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
                # By name: a partition written before a column was added lacks it (reads
                # null); by position, the first file's columns would hide it everywhere.
                body = (
                    f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false, "
                    "union_by_name = true)"
                )
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
        vcon.register("_status", status_frame(status or Manifest()))
        vcon.execute("CREATE TABLE marts_status AS SELECT * FROM _status")
        vcon.execute(f"COMMENT ON TABLE marts_status IS {_lit(STATUS_DOC)}")
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


STATUS_DOC = (
    "Derived-mart rows published provisionally (status provisional: the row failed a "
    "row-level quality expectation, or is built on one that did; reason says which) and "
    "partitions held back by their gate (status held, key_start_s the date's start; the "
    "previous version, if any, stays published)."
)


def status_frame(m: Manifest) -> pl.DataFrame:
    """``marts_status`` rows: held partitions, then provisional rows."""
    rows: list[tuple[str, str | None, int, str, str]] = []
    for unit, h in sorted(m.held.items()):
        mart, day = unit.split(":", 1)
        start, _ = day_bounds(date.fromisoformat(day))
        rows.append((mart, None, start, "held", str(h["reason"])))
    rows += [
        (str(p["mart"]), str(p["site_id"]), int(p["key_start_s"]), "provisional", str(p["reason"]))
        for p in m.provisional
    ]
    return pl.DataFrame(
        rows,
        schema={
            "mart": pl.String,
            "site_id": pl.String,
            "key_start_s": pl.Int64,
            "status": pl.String,
            "reason": pl.String,
        },
        orient="row",
    )


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
