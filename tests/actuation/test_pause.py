"""An operator's pause survives a restart (pure part): the audited change becomes the
compacted record, and the record becomes the pause again, audited as restored."""

from __future__ import annotations

from schemas.actuation import AuditEvent
from streams.actuation.delivery import Command, Device, Pause, Policy, new_state, step
from streams.actuation.pause import pause_record, restored_pauses

P = Policy()
FLEET = [Device("a", "luxos", site_id="site")]


def test_pause_kept_and_restored_after_a_restart() -> None:
    s, out = step(new_state(FLEET, 0.0, P), [Pause("site", True, "operator:ann", 10.0)], P)
    (audit,) = [o for o in out if isinstance(o, AuditEvent)]
    kept = pause_record(audit)
    assert kept is not None and kept.paused and kept.actor == "operator:ann"
    # A restart: a fresh state, the record read back.
    s, out = step(new_state(FLEET, 50.0, P), restored_pauses([kept], {"site"}, 50.0), P)
    assert "site" in s.paused
    (restored,) = [o for o in out if isinstance(o, AuditEvent)]
    assert (restored.action, restored.actor, restored.at_s) == ("pause_restored", "actuator", 50.0)
    assert "operator:ann" in restored.detail
    assert pause_record(restored) is None  # a restoration is not a new change to keep
    s, out = step(s, [Command("c1", "site", "sleep", ["a"], 51.0)], P)
    assert [o.action for o in out if isinstance(o, AuditEvent)] == [
        "command_received",
        "suppressed_site_paused",
    ]


def test_a_resume_is_kept_and_restores_nothing() -> None:
    _, out = step(new_state(FLEET, 0.0, P), [Pause("site", False, "operator:bo", 10.0)], P)
    kept = pause_record(next(o for o in out if isinstance(o, AuditEvent)))
    assert kept is not None and not kept.paused
    assert restored_pauses([kept], {"site"}, 50.0) == []
    assert (
        pause_record(
            AuditEvent(
                audit_id="x", site_id="s", at_s=0, actor="a", action="command_received", subject="c"
            )
        )
        is None
    )
