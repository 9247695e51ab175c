"""What the actuator says about the commands it delivers to miners, outlets and GPUs.

One ``ActuationOutcome`` per step of one command on one device (``sent``, ``acknowledged``,
``complied``, ``failed``, ``escalated``, ``suppressed``, ``dry_run``); ``CommandInForce`` is
the latest command per device on a compacted topic, so a restarted actuator re-asserts it;
``AuditEvent`` records every action and every operator decision; ``SitePause`` is the
latest pause or resume per site on a compacted topic, so a restart keeps an operator's
pause (docs/actuation.md).
"""

from __future__ import annotations

from typing import Literal

from schemas.base import Message

OutcomeKind = Literal[
    "sent", "acknowledged", "complied", "failed", "escalated", "suppressed", "dry_run"
]
Action = Literal["sleep", "wake", "set_power", "outlet_off", "outlet_on", "gpu_cap", "gpu_restore"]
Via = Literal["firmware", "outlet", "nvml"]


class ActuationOutcome(Message, kw_only=True):
    """One step of delivering one command to one device."""

    outcome_id: str
    """``<command_id>/<device_id>/<kind>/<attempt>``: the same step twice is one row."""
    command_id: str
    site_id: str
    device_id: str
    """Miner id, or ``<node>/gpu<i>`` for a GPU."""
    kind: OutcomeKind
    action: Action
    via: Via = "firmware"
    power_limit_w: float | None = None
    target_w: float
    """Power the device must measure at or below (``wake``: at or above) to comply."""
    measured_w: float | None = None
    attempt: int = 0
    tier: int = 0
    issued_at_s: float
    deadline_s: float
    at_s: float
    response_s: float | None = None
    """``at_s - issued_at_s`` on ``complied``: decision to measured compliance."""
    detail: str = ""


class CommandInForce(Message, kw_only=True):
    """The command a device should be obeying now (compacted, key: device id)."""

    site_id: str
    device_id: str
    command_id: str
    action: Action
    power_limit_w: float | None = None
    issued_at_s: float
    deadline_s: float
    source: Literal["controller", "operator", "escalation"] = "controller"


class AuditEvent(Message, kw_only=True):
    """Who did what, when: every command received, suppressed, sent, escalated, paused."""

    audit_id: str
    site_id: str
    at_s: float
    actor: str
    """``controller``, ``operator:<name>``, ``actuator``."""
    action: str
    subject: str
    """Command id, device id or site id the action is about."""
    detail: str = ""
    dry_run: bool = False


class SitePause(Message, kw_only=True):
    """Whether automatic curtailment of a site is paused now (compacted, key: site id)."""

    site_id: str
    paused: bool
    actor: str
    """``operator:<name>`` who paused or resumed."""
    at_s: float
    audit_id: str
    """The audit event of the change."""


def actuation_examples(t: float) -> dict[str, Message]:
    """One valid message per actuation topic (``schemas.examples``)."""
    return {
        "actuation.outcomes.v1": ActuationOutcome(
            outcome_id="cmd-1/lux-0001/complied/1",
            command_id="cmd-1",
            site_id="demo",
            device_id="lux-0001",
            kind="complied",
            action="sleep",
            target_w=60.0,
            measured_w=12.0,
            attempt=1,
            issued_at_s=t - 4,
            deadline_s=t + 26,
            at_s=t,
            response_s=4.0,
        ),
        "actuation.in_force.v1": CommandInForce(
            site_id="demo",
            device_id="lux-0001",
            command_id="cmd-1",
            action="sleep",
            issued_at_s=t - 4,
            deadline_s=t + 26,
        ),
        "actuation.audit.v1": AuditEvent(
            audit_id="demo/cmd-1/received",
            site_id="demo",
            at_s=t,
            actor="controller",
            action="command_received",
            subject="cmd-1",
            detail="sleep 1 miner",
        ),
        "actuation.pause.v1": SitePause(
            site_id="demo",
            paused=True,
            actor="operator:ann",
            at_s=t,
            audit_id="demo/demo/pause_automatic/0.000",
        ),
    }
