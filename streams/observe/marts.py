"""Read the published marts (Parquet) for the dashboard: settlement per interval and month
to date, interval energy, hourly carbon.

Only what is PUBLISHED is read: the latest manifest (``<marts>/_manifests/gen-*.json``)
names the current file of each partition, so a reader never mixes two generations of one
partition nor sees a file being written. Nothing published yet is a normal state, not an
error; an unreadable publication is reported in ``MartsView.message``.

Money columns are Decimal in the Parquet files and are summed as Decimal; they travel to
the page as strings so no float rounding creeps in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

SETTLEMENT = "settlement"
ENERGY = "interval_energy"
CARBON = "carbon_hourly"

SETTLEMENT_COLUMNS = (
    "poi_mwh",
    "forward_mwh",
    "rt_price_usd_per_mwh",
    "forward_usd",
    "rt_sell_back_usd",
    "rt_purchase_usd",
    "mining_revenue_usd",
    "dr_credit_usd",
    "ancillary_credit_usd",
    "four_cp_usd",
    "net_usd",
)
ENERGY_COLUMNS = (
    "ai_mwh",
    "mining_mwh",
    "overhead_mwh",
    "total_mwh",
    "poi_mwh",
    "unabsorbed_mwh",
    "over_contract_mwh",
    "reconciled",
)
CARBON_SUMS = ("total_mwh", "location_g", "market_g", "avoided_g")
NOT_SUMMED = ("rt_price_usd_per_mwh", "reconciled")


@dataclass
class MartsView:
    status: str
    """``none`` (nothing published), ``ok``, or ``error``."""
    message: str
    generation: int | None = None
    published_at_s: float | None = None
    month: str | None = None
    """Local month of the month-to-date sums, ``YYYY-MM``."""
    intervals_table: str | None = None
    """``settlement`` when published, else ``interval_energy``."""
    intervals: list[dict[str, Any]] = field(default_factory=list)
    month_to_date: dict[str, Any] = field(default_factory=dict)
    carbon_month_to_date: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in vars(self).items()}


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def latest_manifest(marts_dir: Path) -> Path | None:
    paths = sorted((marts_dir / "_manifests").glob("gen-*.json"))
    return paths[-1] if paths else None


def month_start_s(now_s: float, tz: str) -> float:
    """UTC epoch seconds of the start of the local month ``now_s`` falls in."""
    local = datetime.fromtimestamp(now_s, ZoneInfo(tz))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def _files_since(marts_dir: Path, units: dict[str, str], since_s: float) -> list[Path]:
    """Files of partitions whose UTC date is on or after the date of ``since_s``."""
    first = datetime.fromtimestamp(since_s, UTC).date() - timedelta(days=1)
    out = []
    for unit, rel in sorted(units.items()):
        if datetime.strptime(unit[:10], "%Y-%m-%d").date() >= first:
            out.append(marts_dir / rel)
    return out


def _read(files: list[Path]) -> pl.DataFrame | None:
    frames = [pl.read_parquet(f) for f in files if f.exists()]
    if not frames:
        return None
    return pl.concat(frames, how="diagonal_relaxed")


def _sums(frame: pl.DataFrame, columns: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in columns:
        if c in frame.columns and c not in NOT_SUMMED:
            if frame.height and frame[c].null_count() == frame.height:
                out[c] = None  # e.g. no marginal signal: unknown, not zero
                continue
            total = frame[c].sum()
            out[c] = total if isinstance(total, Decimal) else float(total or 0.0)
    return out


def read_marts(
    marts_dir: Path,
    *,
    now_s: float,
    site_id: str | None = None,
    tz: str = "UTC",
    last_intervals: int = 16,
) -> MartsView:
    """Latest intervals and month-to-date sums of the published marts of ``site_id``."""
    manifest = latest_manifest(marts_dir)
    if manifest is None:
        return MartsView("none", f"nothing published yet under {marts_dir}")
    try:
        raw = json.loads(manifest.read_text())
        tables: dict[str, dict[str, str]] = raw["tables"]
        view = MartsView(
            "ok",
            f"generation {raw['generation']} from {manifest.name}",
            generation=int(raw["generation"]),
            published_at_s=float(raw["published_at_s"]),
        )
        start = month_start_s(now_s, tz)
        view.month = datetime.fromtimestamp(now_s, ZoneInfo(tz)).strftime("%Y-%m")
        name = SETTLEMENT if tables.get(SETTLEMENT) else ENERGY
        cols = SETTLEMENT_COLUMNS if name == SETTLEMENT else ENERGY_COLUMNS
        frame = _read(_files_since(marts_dir, tables.get(name, {}), start))
        if frame is not None:
            frame = _for_site(frame, site_id).sort("interval_start_s")
            view.intervals_table = name
            keep = ["interval_start_s", *(c for c in cols if c in frame.columns)]
            view.intervals = frame.tail(last_intervals).select(keep).to_dicts()
            view.month_to_date = _sums(frame.filter(pl.col("interval_start_s") >= start), cols)
            view.month_to_date["intervals"] = frame.filter(
                pl.col("interval_start_s") >= start
            ).height
        carbon = _read(_files_since(marts_dir, tables.get(CARBON, {}), start))
        if carbon is not None:
            carbon = _for_site(carbon, site_id).filter(pl.col("hour_start_s") >= start)
            view.carbon_month_to_date = _sums(carbon, CARBON_SUMS)
            view.carbon_month_to_date["hours"] = carbon.height
        if frame is None and carbon is None:
            view.message += ": no interval or carbon rows this month"
        return view
    except (OSError, ValueError, KeyError, pl.exceptions.PolarsError) as exc:
        return MartsView(
            "error", f"cannot read the marts publication {manifest}: {type(exc).__name__}: {exc}"
        )


def _for_site(frame: pl.DataFrame, site_id: str | None) -> pl.DataFrame:
    if site_id is None or "site_id" not in frame.columns:
        return frame
    return frame.filter(pl.col("site_id") == site_id)


class MartsReader:
    """``read_marts`` again only when a new manifest appears (or the month/site changes)."""

    def __init__(self, marts_dir: Path) -> None:
        self.marts_dir = marts_dir
        self._key: tuple[str | None, str | None, str, str] | None = None
        self._view: MartsView | None = None

    def read(self, *, now_s: float, site_id: str | None, tz: str = "UTC") -> MartsView:
        manifest = latest_manifest(self.marts_dir)
        month = datetime.fromtimestamp(now_s, ZoneInfo(tz)).strftime("%Y-%m")
        key = (str(manifest) if manifest else None, site_id, tz, month)
        if self._view is None or key != self._key or self._view.status != "ok":
            self._view = read_marts(self.marts_dir, now_s=now_s, site_id=site_id, tz=tz)
            self._key = key
        return self._view
