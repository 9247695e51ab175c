"""Grid signals: prices, dispatch and emergency levels, frequency, carbon intensity, fuel mix."""

from __future__ import annotations

from typing import Literal

from schemas.base import Message


class PriceSignal(Message, kw_only=True):
    """A settlement point price for one interval (ERCOT: RT 15-minute SPP, DA hourly)."""

    market: str
    """e.g. ``ERCOT``."""
    settlement_point: str
    """e.g. ``LZ_WEST``, ``HB_HUBAVG``."""
    kind: Literal["rt", "da", "sced"]
    interval_start_s: float
    interval_end_s: float
    price_usd_per_mwh: float
    published_s: float | None = None


DispatchKind = Literal[
    "demand_response", "ecrs", "rrs", "non_spin", "ers", "eea", "large_flex_load", "test"
]


class DispatchSignal(Message, kw_only=True):
    """A deployment or emergency notice that asks the site to reduce load."""

    event_id: str
    """Stable id of the dispatch; a later message with the same id updates or ends it."""
    site_id: str | None
    """None: system-wide (e.g. an EEA level), otherwise the site dispatched."""
    kind: DispatchKind
    level: int | None = None
    """EEA level 1-3 for ``eea``; None otherwise."""
    reduce_to_mw: float | None = None
    """Mining load the site must be at or under; None means curtail all flexible load."""
    start_s: float
    end_s: float | None = None
    """None while open-ended."""
    response_deadline_s: float
    """Seconds after ``start_s`` by which the reduction must be reached."""


class FrequencySample(Message, kw_only=True):
    """System frequency measured at or near the site."""

    source_id: str
    ts_s: float
    freq_hz: float


class CarbonIntensity(Message, kw_only=True):
    """Grid carbon intensity for one hour (published average, or a marginal signal)."""

    region: str
    """e.g. ``ERCOT``."""
    kind: Literal["average", "marginal"]
    hour_start_s: float
    intensity_g_per_kwh: float
    """Lifecycle gCO2eq/kWh for ``average``; marginal rate for ``marginal``."""
    source: str


class FuelMix(Message, kw_only=True):
    """Generation by fuel for one interval (ERCOT fuel mix report)."""

    region: str
    interval_start_s: float
    interval_end_s: float
    generation_mw: dict[str, float]
    """Average MW by fuel name (e.g. ``Gas``, ``Wind``, ``Solar``, ``Coal``, ``Nuclear``)."""
