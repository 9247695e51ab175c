"""Write a built report: its CSVs, then the one HTML page that names them."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from streams.reports.render import carbon_html, settlement_html
from transforms.reports.carbon_report import CarbonReport
from transforms.reports.settlement_report import SettlementReport

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    csvs: dict[str, Path]
    """Kind (``intervals``, ``hours``, ``daily``, ``summary``, ``curtailments``) -> path."""


def _atomic_csv(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    frame.write_csv(tmp)
    os.replace(tmp, path)


def _atomic_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _stem(kind: str, site: str, label: str) -> str:
    return f"{kind}-{_SAFE.sub('_', site)}-{label}"


def _write(
    out_dir: Path, stem: str, frames: dict[str, pl.DataFrame], render: Callable[[list[str]], str]
) -> ReportFiles:
    out_dir.mkdir(parents=True, exist_ok=True)
    csvs = {k: out_dir / f"{stem}{'' if k == 'main' else '-' + k}.csv" for k in frames}
    for k, frame in frames.items():
        _atomic_csv(frame, csvs[k])
    html = out_dir / f"{stem}.html"
    _atomic_text(render([p.name for p in csvs.values()]), html)
    return ReportFiles(html, csvs)


def write_settlement_report(report: SettlementReport, out_dir: Path) -> ReportFiles:
    """``settlement-<site>-<period>.csv`` (intervals), ``-daily``, ``-summary``,
    ``-curtailments`` (and ``-transmission`` with 4CP peaks) CSVs and
    ``settlement-<site>-<period>.html``."""
    stem = _stem("settlement", report.site_id, report.period.label)
    frames = {
        "main": report.intervals,
        "daily": report.daily,
        "summary": report.summary,
        "curtailments": report.curtailments,
    }
    if report.transmission is not None:
        frames["transmission"] = report.transmission
    files = _write(out_dir, stem, frames, lambda names: settlement_html(report, names))
    return ReportFiles(
        files.html, {("intervals" if k == "main" else k): v for k, v in files.csvs.items()}
    )


def write_carbon_report(report: CarbonReport, out_dir: Path) -> ReportFiles:
    """``carbon-<site>-<period>.csv`` (hours), ``-daily``, ``-summary`` CSVs and the page."""
    stem = _stem("carbon", report.site_id, report.period.label)
    frames = {"main": report.hours, "daily": report.daily, "summary": report.summary}
    files = _write(out_dir, stem, frames, lambda names: carbon_html(report, names))
    return ReportFiles(
        files.html, {("hours" if k == "main" else k): v for k, v in files.csvs.items()}
    )
