"""An operator's pause kept across actuator restarts (pure).

Every pause or resume the delivery state machine audits (``pause_automatic`` /
``resume_automatic``) is also written as a ``SitePause`` on the compacted
``actuation.pause.v1`` (key: site id), flushed with the commands in force before the
consumed offsets are committed. At start the actuator reads that topic to its end and
re-applies the pauses of its sites, audited as ``pause_restored``.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.actuation import AuditEvent, SitePause
from streams.actuation.delivery import Pause

PAUSES = "actuation.pause.v1"
CHANGES = {"pause_automatic": True, "resume_automatic": False}


def pause_record(e: AuditEvent) -> SitePause | None:
    """The record to keep for an audited pause change; None for any other audit line."""
    paused = CHANGES.get(e.action)
    if paused is None:
        return None
    return SitePause(
        site_id=e.site_id, paused=paused, actor=e.actor, at_s=e.at_s, audit_id=e.audit_id
    )


def restored_pauses(records: Iterable[SitePause], sites: set[str], now_s: float) -> list[Pause]:
    """Delivery inputs re-applying the pauses in force for ``sites`` at a start."""
    return [
        Pause(r.site_id, True, r.actor, r.at_s, restored_at_s=now_s)
        for r in records
        if r.paused and r.site_id in sites
    ]
