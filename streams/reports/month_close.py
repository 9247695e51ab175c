"""Month close from the published marts: load (thin I/O), derive what was not published,
build the report tables (pure), write CSVs + HTML. Used by ``spillway report`` and the
year benchmark."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Generic, TypeVar

import polars as pl

from schemas.site import SiteConfig
from streams.marts.publish import load_manifest, status_notes
from streams.marts.settle import HASHPRICE_COLUMNS, hashprice_in_force
from streams.reports.loader import LoadedTable, load_period, load_table, load_until
from streams.reports.write import ReportFiles, write_carbon_report, write_settlement_report
from transforms.energy import SITE_POWER_COLUMNS
from transforms.four_cp import FourCpInputError, read_posted_peaks
from transforms.reports import derive
from transforms.reports.carbon_report import CarbonReport, build_carbon_report
from transforms.reports.common import Gate, Source
from transforms.reports.errors import NothingPublished, ReportInputError
from transforms.reports.period import Period
from transforms.reports.settlement_report import SettlementReport, build_settlement_report
from transforms.reports.transmission import FourCpInput
from transforms.settlement import build_settlement

Progress = Callable[[str], None]
T = TypeVar("T")


def _quiet(_: str) -> None:
    return None


@dataclass
class Timer:
    """Wall seconds per step, in order (a step run several times adds up)."""

    steps: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, progress: Progress, fn: Callable[[], T]) -> T:
        progress(f"{name} ...")
        t = time.perf_counter()
        out = fn()
        took = time.perf_counter() - t
        self.steps[name] = self.steps.get(name, 0.0) + took
        progress(f"{name}: {took:.2f} s")
        return out


R = TypeVar("R", SettlementReport, CarbonReport)


@dataclass(frozen=True)
class Closed(Generic[R]):
    report: R
    files: ReportFiles
    timings: dict[str, float]


def _source(t: LoadedTable) -> Source:
    note = t.how + (f", published as {t.published_as}" if t.published_as != t.table else "")
    if t.duplicates_dropped:
        note += f", {t.duplicates_dropped} repeated row(s) dropped"
    return Source(t.table, t.files, t.rows, note)


def _energy(
    marts: Path,
    period: Period,
    site_id: str | None,
    got: dict[str, LoadedTable],
    timer: Timer,
    progress: Progress,
    sources: list[Source],
) -> pl.DataFrame | None:
    """The published interval energy, else interval energy derived from site power one
    month at a time: a year of 1-second power never sits in memory at once."""
    if "interval_energy" in got:
        return got["interval_energy"].frame
    parts: list[pl.DataFrame] = []
    files: list[str] = []
    rows = 0
    note = ""
    for month in period.months():
        power = timer.run(
            "load site power",
            progress,
            partial(
                load_table,
                marts,
                "site_power_1s",
                month,
                site_id=site_id,
                required=False,
                columns=SITE_POWER_COLUMNS,
            ),
        )
        if power is None:
            continue
        files += power.files
        rows += power.rows
        note = _source(power).note
        parts.append(
            timer.run(
                "interval energy from site power",
                progress,
                partial(derive.energy_from_site_power, power.frame),
            )
        )
    if not parts:
        return None
    energy = pl.concat(parts)
    sources.append(Source("site_power_1s", tuple(files), rows, note))
    sources.append(
        Source(
            "interval_energy (derived)",
            (),
            energy.height,
            "transforms.energy.interval_energy over site_power_1s, month by month",
        )
    )
    return energy


def close_settlement(
    marts: Path,
    period: Period,
    out_dir: Path,
    *,
    gate: Gate,
    site_id: str | None = None,
    site: SiteConfig | None = None,
    progress: Progress = _quiet,
) -> Closed[SettlementReport]:
    """Settlement month close. Uses the published ``settlement`` mart; when it is absent,
    settles ``interval_energy`` (or ``site_power_1s``) with the published ``grid_prices``
    at the site's settlement point, its contract, the published network hashprice in force
    (the site's policy value before the first) and its pool fee (``site``)."""
    timer = Timer()
    site_id = site_id or (site.site_id if site else None)
    want = {
        "settlement": False,
        "interval_energy": False,
        "curtailment_events": False,
        "surplus_events": False,
    }
    got = timer.run(
        "load marts", progress, lambda: load_period(marts, want, period, site_id=site_id)
    )
    why = "" if "settlement" in got else _why_absent(marts, "settlement", period, site_id)
    if "settlement" not in got:
        got |= timer.run(
            "load grid prices",
            progress,
            lambda: load_period(marts, {"grid_prices": False}, period, site_id=site_id),
        )
    sources = [_source(t) for t in got.values()]
    energy = None
    if "settlement" not in got or "interval_energy" in got:
        energy = _energy(marts, period, site_id, got, timer, progress, sources)
    if "settlement" in got:
        settlement = got["settlement"].frame
    else:
        settlement = _settle_unpublished(
            marts, period, why, got, energy, site, timer, progress, sources
        )
    curt = got.get("curtailment_events")
    surplus = got.get("surplus_events")
    report = timer.run(
        "build report tables + quality gates",
        progress,
        lambda: build_settlement_report(
            period,
            settlement,
            gate=gate,
            energy=energy,
            site_id=site_id,
            curtailment_events=curt.frame if curt else None,
            surplus_events=surplus.frame if surplus else None,
            sources=sources,
            four_cp=_four_cp(site, period, sources),
        ),
    )
    report.notes.extend(_held_notes(marts, period, site_id, ("interval_energy", "settlement")))
    files = timer.run(
        "write CSV + HTML", progress, lambda: write_settlement_report(report, out_dir)
    )
    return Closed(report, files, timer.steps)


def _four_cp(site: SiteConfig | None, period: Period, sources: list[Source]) -> FourCpInput | None:
    """The site's posted peaks (``four_cp_peaks_file``, relative to the working directory as
    in the settlement mart), rate and method; None without a site or a peaks file."""
    if site is None or site.four_cp_peaks_file is None:
        return None
    try:
        peaks = read_posted_peaks(site.four_cp_peaks_file, site.four_cp_method, period.tz)
    except (OSError, FourCpInputError) as exc:
        raise ReportInputError(f"four_cp_peaks_file: {exc}") from exc
    rate = Decimal(repr(site.transmission_rate_usd_per_kw_year))
    sources.append(
        Source(
            "four_cp_peaks_file",
            (site.four_cp_peaks_file,),
            peaks.height,
            f"{site.four_cp_method} peak intervals, rate {rate} USD/kW-yr",
        )
    )
    return FourCpInput(peaks, rate, site.four_cp_method)


def _held_notes(
    marts: Path, period: Period, site_id: str | None, tables: tuple[str, ...]
) -> list[str]:
    """What the latest publication holds back or published provisionally in the period:
    data that was received but is not (or not finally) in the marts this report reads."""
    return status_notes(load_manifest(marts), period.start_s, period.end_s, site_id, tables)


def _lacking(what: list[str]) -> str:
    return "missing " + ", ".join(what)


def _why_absent(marts: Path, table: str, period: Period, site_id: str | None) -> str:
    """The loader's own explanation of why ``table`` has no rows for the period."""
    try:
        load_table(marts, table, period, site_id=site_id, required=True)
    except NothingPublished as exc:
        return str(exc)
    return f"{table} has no rows for {period.label}"


def _settle_unpublished(
    marts: Path,
    period: Period,
    why: str,
    got: dict[str, LoadedTable],
    energy: pl.DataFrame | None,
    site: SiteConfig | None,
    timer: Timer,
    progress: Progress,
    sources: list[Source],
) -> pl.DataFrame:
    lacking = [
        w
        for w, ok in (
            ("interval_energy or site_power", energy is not None),
            ("grid_prices", "grid_prices" in got),
            ("site file (--site-file)", site is not None),
        )
        if not ok
    ]
    if lacking or energy is None or site is None:
        raise NothingPublished(f"{why}; nor can it be derived: {_lacking(lacking)}")
    prices = derive.rt_prices_from_grid(got["grid_prices"].frame, site.settlement_point)
    # As the settlement mart does (streams/marts/settle.py): the network hashprice in force
    # at each interval, the policy value before the first one, net of the pool fee.
    policy_hp = Decimal(repr(site.policy.hashprice_usd_per_ph_day))
    fee = Decimal(repr(site.policy.pool_fee_fraction))
    network = load_until(marts, "grid_hashprice", period.end_s)
    hashprice = hashprice_in_force(
        None if network is None else network.frame.select(HASHPRICE_COLUMNS), policy_hp
    )
    settlement = timer.run(
        "settlement",
        progress,
        lambda: build_settlement(
            energy,
            prices,
            derive.contracts_frame(site),
            hashprice=hashprice,
            pool_fee_fraction=fee,
        ),
    )
    if network is not None:
        sources.append(_source(network))
    in_force = (
        f"network hashprice in force ({network.rows} value(s) published), policy "
        f"{policy_hp} USD/PH/day before the first"
        if network is not None
        else f"policy hashprice {policy_hp} USD/PH/day (no network value published)"
    )
    sources.append(
        Source(
            "settlement (derived)",
            (),
            settlement.height,
            f"transforms.settlement.build_settlement: RT at {site.settlement_point}, site "
            f"contract, {in_force}, pool fee {fee}",
        )
    )
    return settlement


def close_carbon(
    marts: Path,
    period: Period,
    out_dir: Path,
    *,
    gate: Gate,
    site_id: str | None = None,
    progress: Progress = _quiet,
) -> Closed[CarbonReport]:
    """Carbon month close from the published ``carbon_hourly`` mart, or from
    ``interval_energy`` (or ``site_power_1s``) and the published ``grid_carbon``."""
    timer = Timer()
    got = timer.run(
        "load marts",
        progress,
        lambda: load_period(marts, {"carbon_hourly": False}, period, site_id=site_id),
    )
    why = "" if "carbon_hourly" in got else _why_absent(marts, "carbon_hourly", period, site_id)
    if "carbon_hourly" not in got:
        got |= timer.run(
            "load energy, grid carbon",
            progress,
            lambda: load_period(
                marts, {"interval_energy": False, "grid_carbon": False}, period, site_id=site_id
            ),
        )
    sources = [_source(t) for t in got.values()]
    if "carbon_hourly" in got:
        carbon = got["carbon_hourly"].frame
    else:
        energy = _energy(marts, period, site_id, got, timer, progress, sources)
        if energy is None or "grid_carbon" not in got:
            lacking = [
                w
                for w, ok in (
                    ("interval_energy or site_power", energy is not None),
                    ("grid_carbon", "grid_carbon" in got),
                )
                if not ok
            ]
            raise NothingPublished(f"{why}; nor can it be derived: {_lacking(lacking)}")
        intensity = derive.intensity_from_grid(got["grid_carbon"].frame)
        built = timer.run("carbon", progress, lambda: derive.carbon(energy, intensity))
        carbon = built
        sources.append(
            Source(
                "carbon_hourly (derived)",
                (),
                carbon.height,
                "transforms.carbon.build_carbon_hourly, grid_carbon average",
            )
        )
    report = timer.run(
        "build report tables + quality gates",
        progress,
        lambda: build_carbon_report(period, carbon, gate=gate, site_id=site_id, sources=sources),
    )
    report.notes.extend(_held_notes(marts, period, site_id, ("interval_energy", "carbon_hourly")))
    files = timer.run("write CSV + HTML", progress, lambda: write_carbon_report(report, out_dir))
    return Closed(report, files, timer.steps)
