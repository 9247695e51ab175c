"""Market positions of a site: forward blocks, day-ahead trades, ancillary service awards.

These are what the site holds *before* real time; settlement values metered load against
them (``docs/settlement.md``). Times are UTC epoch seconds, power in MW, prices in $/MWh
(energy) or $/MW per hour (ancillary capacity, MCPC). Quantities are floats on the wire;
settlement converts them to exact decimals.
"""

from __future__ import annotations

from typing import Literal

import msgspec

AncillaryService = Literal["RRS", "ECRS", "NSPIN"]
"""Responsive Reserve, ERCOT Contingency Reserve, Non-Spinning Reserve (Nodal Protocols 3.16)."""

AwardMarket = Literal["DAM", "RTM"]
"""Day-ahead award, or real-time award (RTC+B, live since 2025-12-05)."""


class AncillaryAward(msgspec.Struct, kw_only=True, frozen=True):
    """An hourly ancillary service award to the site as a Load Resource.

    Capacity is paid for every awarded hour, deployed or not: ``mw`` x MCPC ($/MW per hour).
    """

    site_id: str
    service: AncillaryService
    market: AwardMarket
    hour_start_s: float
    """UTC epoch seconds of the start of the awarded hour (operating hour HE = start + 1 h)."""
    mw: float
    """Awarded capacity, MW (>= 0); this load is reserved from other curtailment."""
    clearing_price_usd_per_mw: float | None = None
    """MCPC of the hour, $/MW per hour, when the award carries it; None: read it from the
    published MCPC file of the market and hour."""


class ForwardBlock(msgspec.Struct, kw_only=True, frozen=True):
    """A forward purchase of constant power over a time block, settled at a settlement point."""

    settlement_point: str
    """Where the block delivers, usually a hub (e.g. ``HB_WEST``); load at a load zone then
    carries the hub-to-zone basis."""
    start_s: float
    """UTC epoch seconds, inclusive."""
    end_s: float
    """UTC epoch seconds, exclusive."""
    mw: float
    """Power bought over the block, MW (>= 0)."""
    price_usd_per_mwh: float
    """Fixed price of the block, $/MWh."""


class DayAheadPosition(msgspec.Struct, kw_only=True, frozen=True):
    """An hourly day-ahead energy trade (DAM energy bid or offer cleared for the hour)."""

    hour_start_s: float
    """UTC epoch seconds of the start of the hour."""
    settlement_point: str
    """Settlement point of the trade, e.g. ``LZ_WEST`` or ``HB_WEST``."""
    mw: float
    """MW bought (+) or sold (-) for the whole hour."""
    price_usd_per_mwh: float
    """Day-ahead settlement point price of the hour, $/MWh."""
