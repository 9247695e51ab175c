"""Restatement of a closed second of site power, by readings that arrived after it closed.

Stage 2 (``combine``) emits each second once, ``lateness_s`` after it; readings for a closed
second used to be counted (``LateReadings``) and left out of the money. A restatement carries
the second as it is *with* them: the whole ``SitePower`` recomputed from every reading the
agents hold for that second (on-time and late), so the sink can replace the stored row and
keep the before and after in the audit trail. It is cumulative: a second restated twice
carries all late readings in the second message, and the later one wins.
"""

from __future__ import annotations

from schemas.base import Message
from schemas.events import SitePower
from schemas.validation import Limits, check_site_power

RESTATED_TOPIC = "site.power.restated.v1"


class SitePowerRestatement(Message, kw_only=True):
    """A closed second of site power restated with readings that arrived after it closed."""

    site_id: str
    ts_s: int
    """The restated second (start, UTC epoch seconds); equal to ``power.ts_s``."""
    power: SitePower
    """The second as restated: every reading of it, late ones included."""
    late_readings: int
    """Readings in ``power`` that arrived after the second had closed (cumulative)."""
    restated_at_s: float
    """Wall clock when the agents restated the second, UTC epoch seconds."""
    reason: str = "late readings"


def check_restatement(r: SitePowerRestatement, horizon_s: float | None = None) -> str | None:
    """Why a restatement cannot be applied, or None. ``horizon_s``: how long after its
    second a restatement is still applied (the sink's ``restatement_horizon_s``)."""
    if r.power.site_id != r.site_id or r.power.ts_s != r.ts_s:
        return (
            f"restatement of {r.site_id}/{r.ts_s} carries the power of "
            f"{r.power.site_id}/{r.power.ts_s}"
        )
    if r.late_readings < 0:
        return f"late_readings {r.late_readings} is negative"
    if horizon_s is not None and r.restated_at_s - r.ts_s > horizon_s:
        return (
            f"restated {r.restated_at_s - r.ts_s:.0f} s after its second, beyond the "
            f"restatement horizon of {horizon_s:.0f} s (restatement_horizon_s)"
        )
    return None


def check_restatement_message(r: SitePowerRestatement, lim: Limits) -> str | None:
    """The contract's check (no horizon: that is the sink's setting)."""
    return check_restatement(r) or check_site_power(r.power, lim)
