"""What `spillway run` runs: the site, the day, its speed, and the events it contains (pure)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
from msgspec.structs import replace

from schemas.grid import DispatchSignal
from streams.replay.records import Record
from streams.sim.faults import FaultConfig
from streams.sim.spec import AiSpike
from streams.site_file import SiteFile
from streams.site_scale import scale_site

INFRA = Path(__file__).resolve().parents[2] / "infra"
REFERENCE_SITE = INFRA / "sites" / "reference-400mw.toml"
GRID_SCENARIO = INFRA / "scenarios" / "run-day-grid.toml"


@dataclass(frozen=True)
class LocalWindow:
    """A window in the site's local time on the run's day."""

    start: dt.time
    minutes: float


@dataclass(frozen=True)
class DayPlan:
    site_file: Path = REFERENCE_SITE
    scale: float = 0.001
    """Fraction of the site simulated (devices, contract and limits scale together)."""
    day: dt.date = dt.date(2025, 7, 1)
    """Local market day; the bundled prices cover 2025-07-01 to 2025-07-03."""
    hours: float = 3.0
    start_hour: float = 19.0
    """Local hour of the day the run starts at. The default window, 19:00 to 22:00, holds the
    day's key moments: the AI spike, the dispatch and the real evening price spike (21:00,
    $340/MWh at LZ_WEST, published at 21:20); ``full_day`` gives the whole day."""
    speed: float = 60.0
    """Simulated seconds per wall-clock second."""
    grid_scenario: Path = GRID_SCENARIO
    ai_spike: LocalWindow | None = field(default_factory=lambda: LocalWindow(dt.time(19, 15), 20))
    dispatch: LocalWindow | None = field(default_factory=lambda: LocalWindow(dt.time(20, 0), 30))
    dispatch_keep_fraction: float = 0.2
    """The dispatch asks mining down to this share of the fleet's nameplate."""
    collector_outage_s: float = 0.0
    """One ASIC collector loses its link for this long from ``collector_outage_at`` and then
    sends what it buffered: its readings arrive late and restate their seconds (0: none)."""
    collector_outage_at: dt.time = dt.time(20, 40)
    hashprice_usd_per_ph_day: float = 39.0
    """Braiins Insights, 2025-12-14 (infra/data): $0.039/TH/day."""

    @property
    def max_open_s(self) -> int:
        """Event time a lagging partition may hold seconds open in the agents: 10 s of wall
        clock at this speed (at N x, a partition 1 s behind is N s of event time behind)."""
        return max(300, int(self.speed * 10))

    def tz(self, site_file: SiteFile) -> ZoneInfo:
        return ZoneInfo(site_file.site.timezone)

    def start_s(self, site_file: SiteFile) -> float:
        local = dt.datetime.combine(self.day, dt.time(0), tzinfo=self.tz(site_file))
        return local.timestamp() + self.start_hour * 3600

    def at(self, site_file: SiteFile, when: dt.time) -> float:
        return dt.datetime.combine(self.day, when, tzinfo=self.tz(site_file)).timestamp()


def faults(plan: DayPlan, site_file: SiteFile) -> FaultConfig:
    """The run's injected faults: the collector outage, if asked for."""
    if plan.collector_outage_s <= 0:
        return FaultConfig()
    return FaultConfig(
        outage_start_s=plan.at(site_file, plan.collector_outage_at),
        outage_s=plan.collector_outage_s,
    )


def full_day(plan: DayPlan) -> DayPlan:
    """The whole local day, with the AI spike at 11:00 and the dispatch at 14:00."""
    return dataclasses.replace(
        plan,
        start_hour=0.0,
        hours=24.0,
        ai_spike=LocalWindow(dt.time(11, 0), 20),
        dispatch=LocalWindow(dt.time(14, 0), 30),
    )


def prepare_site(plan: DayPlan, site_file: SiteFile) -> SiteFile:
    """The scaled site with the day's AI spike scheduled in its simulator settings."""
    scaled = scale_site(site_file, plan.scale)
    policy = replace(scaled.site.policy, hashprice_usd_per_ph_day=plan.hashprice_usd_per_ph_day)
    scaled = replace(scaled, site=replace(scaled.site, policy=policy))
    if plan.ai_spike is None:
        return scaled
    spike = AiSpike(
        start_s=plan.at(scaled, plan.ai_spike.start), duration_s=plan.ai_spike.minutes * 60
    )
    return replace(scaled, sim=replace(scaled.sim, ai_spikes=[*scaled.sim.ai_spikes, spike]))


def dispatch_records(plan: DayPlan, site_file: SiteFile) -> list[Record]:
    """An ECRS deployment for the site: opened, then closed, as a real notice is."""
    if plan.dispatch is None:
        return []
    site = site_file.site
    nameplate_mw = sum(m.count * m.power_w for m in site.asic_models) / 1e6
    start = plan.at(site_file, plan.dispatch.start)
    end = start + plan.dispatch.minutes * 60
    opened = DispatchSignal(
        event_id=f"{site.site_id}-ecrs-{plan.day.isoformat()}",
        site_id=site.site_id,
        kind="ecrs",
        reduce_to_mw=round(nameplate_mw * plan.dispatch_keep_fraction, 6),
        start_s=start,
        response_deadline_s=600.0,
    )
    closed = replace(opened, end_s=end)
    key = opened.event_id.encode()
    enc = msgspec.json.encode
    return [
        Record(start, "grid.dispatch.v1", key, enc(opened)),
        Record(end, "grid.dispatch.v1", key, enc(closed)),
    ]
