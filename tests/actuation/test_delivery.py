"""The delivery state machine, case by case (pure: no sockets, no Kafka)."""

from __future__ import annotations

from schemas.actuation import ActuationOutcome, AuditEvent, CommandInForce
from streams.actuation.delivery import (
    Ack,
    Command,
    Device,
    Output,
    Pause,
    Policy,
    Reading,
    Restore,
    Send,
    State,
    Tick,
    new_state,
    shortfall_w,
    step,
)

FLEET = [
    Device("a", "luxos", tier=0, nominal_w=3000, outlet="pdu/0"),
    Device("b", "whatsminer", tier=0, nominal_w=3000),
    Device("c", "braiins", tier=1, nominal_w=3000),
    Device("d", "braiins", tier=1, nominal_w=3000),
    Device("s19", "antminer", tier=0, nominal_w=3200, outlet="pdu/1"),
]
P = Policy(deadline_s=10, backoff_s=1, ack_timeout_s=2, sends_per_s=100, burst=100)


def cmd(cid: str = "c1", ids: tuple[str, ...] = ("a", "b"), **kw: object) -> Command:
    return Command(cid, "site", kw.pop("action", "sleep"), ids, 100.0, **kw)  # type: ignore[arg-type]


def sends(out: list[Output]) -> list[Send]:
    return [o for o in out if isinstance(o, Send)]


def kinds(out: list[Output], device: str | None = None) -> list[str]:
    return [
        o.kind
        for o in out
        if isinstance(o, ActuationOutcome) and (device is None or o.device_id == device)
    ]


def start(p: Policy = P) -> State:
    return new_state(FLEET, 100.0, p)


def test_command_is_sent_acknowledged_and_complies_on_a_later_reading() -> None:
    s, out = step(start(), [cmd(), Tick(100.0)], P)
    assert [x.device_id for x in sends(out)] == ["a", "b"]
    assert [o.device_id for o in out if isinstance(o, CommandInForce)] == ["a", "b"]
    s, out = step(s, [Ack("a", "c1", 1, True, 101.0)], P)
    assert kinds(out) == ["acknowledged"]
    # A reading taken before the acknowledgement says nothing about the command.
    s, out = step(s, [Reading("a", 10.0, 100.5)], P)
    assert kinds(out) == []
    s, out = step(s, [Reading("a", 2000.0, 101.5), Reading("a", 100.0, 103.0)], P)
    done = [o for o in out if isinstance(o, ActuationOutcome)]
    assert [o.kind for o in done] == ["complied"]
    assert done[0].response_s == 3.0 and done[0].measured_w == 100.0


def test_same_command_id_twice_does_nothing_more() -> None:
    s, _ = step(start(), [cmd(), Tick(100.0)], P)
    s2, out = step(s, [cmd(), Tick(100.1)], P)
    assert out == [] or not sends(out)
    assert s2.deliveries == s.deliveries


def test_refused_send_is_retried_with_growing_backoff_then_fails() -> None:
    p = Policy(deadline_s=1000, backoff_s=1, max_attempts=3, sends_per_s=100, burst=100)
    s, _ = step(start(p), [cmd(ids=("b",)), Tick(100.0)], p)
    s, out = step(s, [Ack("b", "c1", 1, False, 100.2, "refused"), Tick(100.5)], p)
    assert sends(out) == []  # backoff 1 s
    s, out = step(s, [Tick(101.3)], p)
    assert [x.attempt for x in sends(out)] == [2]
    s, _ = step(s, [Ack("b", "c1", 2, False, 101.4, "refused"), Tick(102.5)], p)
    s, out = step(s, [Tick(103.5)], p)
    assert [x.attempt for x in sends(out)] == [3]  # waited 2 s
    s, out = step(s, [Ack("b", "c1", 3, False, 103.6, "refused")], p)
    assert kinds(out, "b")[0] == "failed"


def test_unanswered_send_times_out_and_is_retried() -> None:
    s, _ = step(start(), [cmd(ids=("b",)), Tick(100.0)], P)
    s, out = step(s, [Tick(102.5)], P)  # ack timeout 2 s, backoff 1 s
    assert sends(out) == []
    s, out = step(s, [Tick(103.6)], P)
    assert [x.attempt for x in sends(out)] == [2]


def test_missed_deadline_escalates_to_outlet_and_next_tier() -> None:
    s, _ = step(start(), [cmd(ids=("a",)), Tick(100.0)], P)
    s, _ = step(s, [Ack("a", "c1", 1, True, 100.5), Reading("a", 3000.0, 101.0)], P)
    s, out = step(s, [Tick(110.5)], P)
    assert kinds(out, "a")[:2] == ["failed", "escalated"]
    cut = [x for x in sends(out) if x.device_id == "a"]
    assert cut and cut[0].action == "outlet_off" and cut[0].via == "outlet"
    assert cut[0].outlet == "pdu/0"
    tier1 = [x for x in sends(out) if x.device_id in ("c", "d")]
    # 2850 W short (3000 measured, 150 allowed): one tier-1 miner frees 2850 W.
    assert [x.device_id for x in tier1] == ["c"]
    assert tier1[0].command_id == "c1/tier1/a"
    audits = [o.action for o in out if isinstance(o, AuditEvent)]
    assert "escalate_outlet" in audits and "escalate_tier" in audits


def test_escalation_reaches_only_the_short_miners_own_site() -> None:
    """A tier-1 miner at another site frees nothing at this site's meter: escalation
    passes it by, and with nothing left here it is exhausted and the shortfall kept."""
    fleet = [
        Device("a", "luxos", tier=0, nominal_w=3000, site_id="west"),
        Device("x", "braiins", tier=1, nominal_w=3000, site_id="east"),
    ]
    s, _ = step(
        new_state(fleet, 100.0, P), [Command("c1", "west", "sleep", ("a",), 100.0), Tick(100.0)], P
    )
    s, _ = step(s, [Ack("a", "c1", 1, True, 100.5), Reading("a", 3000.0, 101.0)], P)
    s, out = step(s, [Tick(110.5)], P)
    assert [x.device_id for x in sends(out)] == []
    audits = [o.action for o in out if isinstance(o, AuditEvent)]
    assert "escalation_exhausted" in audits and "escalate_tier" not in audits
    assert s.short["a"].site_id == "west" and s.short["a"].short_w == 2850.0


def test_escalation_climbs_tiers_and_keeps_what_none_covers() -> None:
    """2850 W short; tier 1 and tier 2 each free 950 W (1000 W miners to their 5 % floor):
    both are slept at once and the 950 W no tier covers is kept as the miner's shortfall."""
    fleet = [
        Device("a", "luxos", tier=0, nominal_w=3000),
        Device("c", "braiins", tier=1, nominal_w=1000),
        Device("e", "braiins", tier=2, nominal_w=1000),
    ]
    s, _ = step(new_state(fleet, 100.0, P), [cmd(ids=("a",)), Tick(100.0)], P)
    s, _ = step(s, [Ack("a", "c1", 1, True, 100.5), Reading("a", 3000.0, 101.0)], P)
    s, out = step(s, [Tick(110.5)], P)
    assert [(x.device_id, x.command_id) for x in sends(out)] == [
        ("c", "c1/tier1/a"),
        ("e", "c1/tier2/a"),
    ]
    details = [(o.action, o.detail) for o in out if isinstance(o, AuditEvent)]
    assert details == [
        ("escalate_tier", "tier 1: c1/tier1/a"),
        ("escalate_tier", "tier 2: c1/tier2/a"),
        ("escalation_exhausted", "950 W short"),
    ]
    assert shortfall_w(s, "site") == 950.0
    s, out = step(s, [Reading("a", 100.0, 112.0)], P)  # the miner complies late
    assert shortfall_w(s, "site") == 0.0


def test_stock_antminer_is_curtailed_through_its_outlet() -> None:
    s, out = step(start(), [cmd(ids=("s19",)), Tick(100.0)], P)
    (x,) = sends(out)
    assert (x.action, x.via, x.outlet) == ("outlet_off", "outlet", "pdu/1")


def test_paused_site_suppresses_automatic_but_not_operator_commands() -> None:
    s, out = step(start(), [Pause("site", True, "operator:ann", 99.0)], P)
    assert [o.action for o in out if isinstance(o, AuditEvent)] == ["pause_automatic"]
    s, out = step(s, [cmd(), Tick(100.0)], P)
    assert sends(out) == []
    assert "suppressed_site_paused" in [o.action for o in out if isinstance(o, AuditEvent)]
    s, out = step(s, [cmd("op1", source="operator", actor="operator:ann"), Tick(100.1)], P)
    assert [x.device_id for x in sends(out)] == ["a", "b"]


def test_dry_run_sends_nothing_and_says_what_it_would_have_sent() -> None:
    p = Policy(dry_run=True)
    s, out = step(new_state(FLEET, 100.0, p), [cmd(), Tick(100.0)], p)
    assert sends(out) == []
    assert kinds(out) == ["dry_run", "dry_run"]
    assert all(o.dry_run for o in out if isinstance(o, AuditEvent))


def test_rate_limit_delays_but_never_drops() -> None:
    p = Policy(sends_per_s=2, burst=2, deadline_s=100)
    s, out = step(new_state(FLEET, 100.0, p), [cmd(ids=("a", "b", "c", "d")), Tick(100.0)], p)
    assert len(sends(out)) == 2
    s, out = step(s, [Tick(100.5)], p)
    assert len(sends(out)) == 1
    s, out = step(s, [Tick(101.0)], p)
    assert len(sends(out)) == 1


def test_newer_command_replaces_older_and_old_acks_are_ignored() -> None:
    s, _ = step(start(), [cmd(ids=("a",)), Tick(100.0)], P)
    newer = Command("c2", "site", "wake", ("a",), 105.0)
    s, out = step(s, [newer, Tick(105.0)], P)
    assert [(x.command_id, x.action) for x in sends(out)] == [("c2", "wake")]
    s, out = step(s, [Ack("a", "c1", 1, True, 105.1)], P)
    assert kinds(out) == []


def test_restart_reasserts_the_commands_in_force() -> None:
    rec = CommandInForce(
        site_id="site",
        device_id="a",
        command_id="c1",
        action="sleep",
        issued_at_s=100.0,
        deadline_s=110.0,
    )
    s, out = step(start(), [Restore([rec], 200.0), Tick(200.0)], P)
    (x,) = sends(out)
    assert (x.device_id, x.command_id, x.action) == ("a", "c1", "sleep")
    assert s.deliveries["a"].deadline_s == 210.0  # a fresh deadline after the restart
    # The command re-read from Kafka after the restart is a duplicate now.
    s, out = step(s, [cmd(ids=("a",)), Tick(200.1)], P)
    assert sends(out) == []
