"""When ERCOT prices are known: the posting lag of each price kind (pure).

- ``sced``: NP6-788-CD "LMPs by Resource Nodes, Load Zones and Trading Hubs", one SCED run
  about every five minutes (Nodal Protocols 6.3.2). ERCOT staff (ercot/api-specs
  discussion #104, August 2025) say the report reaches ercot.com up to about 5 minutes after
  the run and the Public API 5 to 10 minutes after that; hubs and load zones show on the
  ``hb_lz`` display within 1-2 minutes. We take the run's interval end (run + 5 min) plus
  5 minutes: a price posted earlier is only used later, never the reverse.
- ``rt``: NP6-905-CD 15-minute settlement point prices are computed from the interval's SCED
  LMPs, so they exist only after the interval ends (Nodal Protocols 6.6.1). No posting time
  was found in the protocols; we take the interval end plus 5 minutes.
- ``da``: the day-ahead market posts the next day's hourly prices around 13:30 the day
  before (Nodal Protocols 4.1.2); decisions do not use them.
"""

from __future__ import annotations

from schemas.grid import PriceSignal

POSTING_LAG_S: dict[str, float] = {"sced": 300.0, "rt": 300.0}
"""Seconds after a price's interval end until it is known (see the module docstring)."""
DA_POSTED_BEFORE_S = 10.5 * 3600.0
"""Day-ahead prices are known from about 13:30 the day before, so at least 10.5 h before
any hour of the day; each hour is taken as known 10.5 h before it starts (never earlier
than the truth)."""


def published_at(signal: PriceSignal) -> float:
    """When ``signal`` is known: its ``published_s``, else its kind's posting rule."""
    if signal.published_s is not None:
        return signal.published_s
    if signal.kind == "da":
        return signal.interval_start_s - DA_POSTED_BEFORE_S
    return signal.interval_end_s + POSTING_LAG_S[signal.kind]
