"""Grid signals: prices, dispatch and emergency levels, frequency, carbon intensity, fuel mix."""

from __future__ import annotations

from typing import Literal

from schemas.base import Message


class PriceSignal(Message, kw_only=True):
    """A price for one interval at one settlement point, as ERCOT publishes it.

    ``sced``: the 5-minute SCED LMP (NP6-788-CD) that decisions act on; ``rt``: the 15-minute
    real-time settlement point price (NP6-905-CD) that settlement uses (and that decisions
    fall back to where no SCED series exists); ``da``: the day-ahead hourly price.
    """

    market: str
    """e.g. ``ERCOT``."""
    settlement_point: str
    """e.g. ``LZ_WEST``, ``HB_HUBAVG``."""
    kind: Literal["rt", "da", "sced"]
    interval_start_s: float
    interval_end_s: float
    price_usd_per_mwh: float
    published_s: float | None = None
    """When ERCOT posted the price (UTC seconds). A price is known only from then: the
    controller uses none before its clock reaches it. None (older feeds): taken as
    ``interval_end_s`` plus the posting lag of its kind (``streams.replay.prices``)."""


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


class HashpriceSignal(Message, kw_only=True):
    """Bitcoin hashprice in force from ``ts_s``: expected gross revenue of 1 PH/s for one
    day, before pool fees, from network data (difficulty, block subsidy, fees, BTC price).

    Settlement values mining at the hashprice in force in an interval (the latest signal
    with ``ts_s`` at or before the interval's start) less the site's pool fee
    (``CurtailmentPolicy.pool_fee_fraction`` of the config in force then:
    ``mining_revenue_usd`` is net, ``mining_pool_fee_usd`` the fee); the controller's
    breakevens deduct the same fee.
    """

    source: str
    """e.g. ``coinmetrics:2020-03-12`` or ``braiins-insights``."""
    ts_s: float
    """Start of the period this hashprice covers (a day's start for daily network data)."""
    published_s: float
    """When the value was known (a daily value: the end of its day); decisions use it only
    from then."""
    usd_per_ph_day: float
    """Gross hashprice, USD per PH/s per day."""
    difficulty: float | None = None
    subsidy_btc_per_block: float | None = None
    fees_btc_per_block: float | None = None
    btc_price_usd: float | None = None


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
