"""Delivery of miner commands as a pure state machine: ``step(state, inputs, policy)``.

Per device it keeps the latest command and where its delivery stands:
``pending -> sent -> acknowledged -> complied``, with retries and backoff on a refused or
unanswered send, and ``failed -> escalated`` when the deadline passes without measured
compliance. Escalation cuts the device's outlet (a PDU relay) and commands the next tier of
miners for the shortfall. Nothing here does I/O: the runner turns ``Send`` into firmware,
Modbus or NVML calls and feeds back ``Ack`` and ``Reading``.

Rules it keeps (docs/actuation.md):

- a command id seen before does nothing more (idempotent); a newer command for a device
  replaces the older one;
- compliance is only counted on a reading taken after the device acknowledged (a reading
  from before the command says nothing about it; same rule as curtailment events);
- what an escalation that ran out of tiers leaves short is kept per device (``State.short``)
  until the device complies, late or through its outlet, or is woken: the GPU tier covers it
  for grid and 4CP events (``shortfall_w``, gpu_tier.py);
- automatic (controller) commands for a paused site are suppressed and audited; operator
  commands go through; in dry-run nothing is sent, every would-be send is an outcome;
- sends are rate limited (token bucket): what exceeds the budget waits, it is not dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from typing import Literal

from schemas.actuation import Action, ActuationOutcome, AuditEvent, CommandInForce, OutcomeKind

OUTLET_ONLY_KINDS = ("antminer",)
"""Stock Antminer firmware: no power control over its API (docs/collectors.md)."""

Phase = Literal["pending", "sent", "acknowledged", "complied", "failed", "escalated"]
Source = Literal["controller", "operator", "escalation"]


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    kind: str
    tier: int = 0
    """Curtailment order: tier 0 first; escalation reaches for tier + 1."""
    nominal_w: float = 3000.0
    outlet: str | None = None
    """PDU outlet id feeding this device, if it can be cut."""
    site_id: str = "site"


@dataclass(frozen=True, slots=True)
class Policy:
    deadline_s: float = 30.0
    """Default time from issue to measured compliance when a command carries none."""
    max_attempts: int = 5
    backoff_s: float = 0.5
    backoff_cap_s: float = 8.0
    ack_timeout_s: float = 5.0
    sleep_floor_frac: float = 0.05
    """A sleeping miner complies at or below this share of its nominal power (fans, control
    board: a slept S19 still draws tens of watts)."""
    set_power_tolerance: float = 0.05
    wake_frac: float = 0.8
    outlet_deadline_s: float = 15.0
    sends_per_s: float = 2000.0
    burst: float = 2000.0
    dry_run: bool = False
    escalate_tiers: bool = True


@dataclass(frozen=True, slots=True)
class Delivery:
    device_id: str
    command_id: str
    site_id: str
    action: Action
    power_limit_w: float | None
    target_w: float
    issued_at_s: float
    deadline_s: float
    source: Source
    phase: Phase = "pending"
    attempt: int = 0
    next_try_s: float = 0.0
    acked_at_s: float | None = None
    measured_w: float | None = None
    via: Literal["firmware", "outlet", "nvml"] = "firmware"


@dataclass(frozen=True, slots=True)
class Short:
    """What a failed miner still lacks after escalation ran out of tiers and outlets'
    reach: its measured power (nominal if never read) minus its target."""

    site_id: str
    command_id: str
    short_w: float
    since_s: float


@dataclass(frozen=True, slots=True)
class State:
    fleet: dict[str, Device]
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    seen: frozenset[str] = frozenset()
    paused: frozenset[str] = frozenset()
    tokens: float = 0.0
    tokens_at_s: float = 0.0
    short: dict[str, Short] = field(default_factory=dict)
    """Device id -> its shortfall after escalation was exhausted."""


# ---- inputs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    command_id: str
    site_id: str
    action: Action
    device_ids: Sequence[str]
    issued_at_s: float
    deadline_s: float | None = None
    power_limit_w: float | None = None
    source: Source = "controller"
    actor: str = "controller"


@dataclass(frozen=True, slots=True)
class Ack:
    device_id: str
    command_id: str
    attempt: int
    ok: bool
    at_s: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Reading:
    device_id: str
    power_w: float | None
    at_s: float


@dataclass(frozen=True, slots=True)
class Tick:
    now_s: float


@dataclass(frozen=True, slots=True)
class Pause:
    site_id: str
    paused: bool
    actor: str
    at_s: float
    restored_at_s: float | None = None
    """Set when read back from ``actuation.pause.v1`` at a start (``at_s``: when it was
    made): audited as a restoration, not as a new operator action."""


@dataclass(frozen=True, slots=True)
class Restore:
    """Commands in force read back from the compacted topic after a restart."""

    records: Sequence[CommandInForce]
    at_s: float


Input = Command | Ack | Reading | Tick | Pause | Restore

# ---- outputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    device_id: str
    kind: str
    command_id: str
    action: Action
    power_limit_w: float | None
    attempt: int
    via: Literal["firmware", "outlet", "nvml"]
    outlet: str | None = None


Output = Send | ActuationOutcome | AuditEvent | CommandInForce


def new_state(devices: Iterable[Device], now_s: float, policy: Policy) -> State:
    return State({d.device_id: d for d in devices}, tokens=policy.burst, tokens_at_s=now_s)


def target_w(device: Device, action: Action, power_limit_w: float | None, p: Policy) -> float:
    """The measured power that counts as compliance."""
    if action in ("sleep", "outlet_off"):
        return device.nominal_w * p.sleep_floor_frac
    if action == "set_power":
        return (power_limit_w or 0.0) * (1 + p.set_power_tolerance)
    return device.nominal_w * p.wake_frac


def complies(d: Delivery, measured_w: float) -> bool:
    if d.action in ("wake", "outlet_on"):
        return measured_w >= d.target_w
    return measured_w <= d.target_w


def _outcome(
    d: Delivery, kind: OutcomeKind, at_s: float, dev: Device, detail: str = ""
) -> ActuationOutcome:
    return ActuationOutcome(
        outcome_id=f"{d.command_id}/{d.device_id}/{kind}/{d.attempt}",
        command_id=d.command_id,
        site_id=d.site_id,
        device_id=d.device_id,
        kind=kind,
        action=d.action,
        via=d.via,
        power_limit_w=d.power_limit_w,
        target_w=d.target_w,
        measured_w=d.measured_w,
        attempt=d.attempt,
        tier=dev.tier,
        issued_at_s=d.issued_at_s,
        deadline_s=d.deadline_s,
        at_s=at_s,
        response_s=at_s - d.issued_at_s if kind == "complied" else None,
        detail=detail,
    )


def _audit(
    site: str, at_s: float, actor: str, action: str, subject: str, detail: str, p: Policy
) -> AuditEvent:
    return AuditEvent(
        audit_id=f"{site}/{subject}/{action}/{at_s:.3f}",
        site_id=site,
        at_s=at_s,
        actor=actor,
        action=action,
        subject=subject,
        detail=detail,
        dry_run=p.dry_run,
    )


def _in_force(d: Delivery) -> CommandInForce:
    return CommandInForce(
        site_id=d.site_id,
        device_id=d.device_id,
        command_id=d.command_id,
        action=d.action,
        power_limit_w=d.power_limit_w,
        issued_at_s=d.issued_at_s,
        deadline_s=d.deadline_s,
        source=d.source,
    )


class _Step:
    """Mutable scratch for one step; the State it returns is a new frozen value."""

    def __init__(self, state: State, p: Policy) -> None:
        self.p = p
        self.fleet = state.fleet
        self.deliveries = dict(state.deliveries)
        self.seen = set(state.seen)
        self.paused = set(state.paused)
        self.tokens = state.tokens
        self.tokens_at_s = state.tokens_at_s
        self.short = dict(state.short)
        self.out: list[Output] = []

    def state(self) -> State:
        return State(
            self.fleet,
            self.deliveries,
            frozenset(self.seen),
            frozenset(self.paused),
            self.tokens,
            self.tokens_at_s,
            self.short,
        )

    # -- command intake --
    def command(self, c: Command) -> None:
        p = self.p
        if c.command_id in self.seen:
            return  # idempotent: the same id twice does nothing more
        self.seen.add(c.command_id)
        self.out.append(
            _audit(
                c.site_id,
                c.issued_at_s,
                c.actor,
                "command_received",
                c.command_id,
                f"{c.action} {len(c.device_ids)} devices",
                p,
            )
        )
        if c.site_id in self.paused and c.source == "controller":
            self.out.append(
                _audit(
                    c.site_id,
                    c.issued_at_s,
                    "actuator",
                    "suppressed_site_paused",
                    c.command_id,
                    "automatic curtailment paused by an operator",
                    p,
                )
            )
            return
        deadline = c.deadline_s if c.deadline_s is not None else c.issued_at_s + p.deadline_s
        unknown = [m for m in c.device_ids if m not in self.fleet]
        if unknown:
            self.out.append(
                _audit(
                    c.site_id,
                    c.issued_at_s,
                    "actuator",
                    "unknown_devices",
                    c.command_id,
                    f"{len(unknown)} not in the fleet file, e.g. {unknown[:3]}",
                    p,
                )
            )
        for m in c.device_ids:
            dev = self.fleet.get(m)
            if dev is None:
                continue
            self.assign(
                dev, c.command_id, c.action, c.power_limit_w, c.issued_at_s, deadline, c.source
            )

    def assign(
        self,
        dev: Device,
        command_id: str,
        action: Action,
        power_limit_w: float | None,
        issued_at_s: float,
        deadline_s: float,
        source: Source,
        via: Literal["firmware", "outlet", "nvml"] = "firmware",
    ) -> None:
        old = self.deliveries.get(dev.device_id)
        if old is not None and old.issued_at_s > issued_at_s:
            return  # an older command never overrides a newer one
        if dev.kind in OUTLET_ONLY_KINDS and action in ("sleep", "wake", "set_power"):
            # Stock firmware takes no power command: its outlet is the only lever.
            action, via = ("outlet_on" if action == "wake" else "outlet_off"), "outlet"
        d = Delivery(
            device_id=dev.device_id,
            command_id=command_id,
            site_id=dev.site_id,
            action=action,
            power_limit_w=power_limit_w,
            target_w=target_w(dev, action, power_limit_w, self.p),
            issued_at_s=issued_at_s,
            deadline_s=deadline_s,
            source=source,
            next_try_s=issued_at_s,
            via=via,
        )
        self.deliveries[dev.device_id] = d
        self.out.append(_in_force(d))
        if action in ("wake", "outlet_on"):
            # Released: what it lacked is no longer asked of it. A new curtailment keeps the
            # shortfall until the device is measured at its target (or fails again).
            self.unshort(dev.device_id, issued_at_s, f"released by {command_id}")

    # -- device feedback --
    def ack(self, a: Ack) -> None:
        d = self.deliveries.get(a.device_id)
        if d is None or d.command_id != a.command_id or d.attempt != a.attempt:
            return  # an answer to a command or attempt that is no longer current
        if d.phase != "sent":
            return
        dev = self.fleet[d.device_id]
        if a.ok:
            d = replace(d, phase="acknowledged", acked_at_s=a.at_s)
            self.deliveries[d.device_id] = d
            self.out.append(_outcome(d, "acknowledged", a.at_s, dev, a.detail))
            return
        if d.attempt >= self.p.max_attempts:
            self.fail(d, a.at_s, f"no acknowledgement after {d.attempt} attempts: {a.detail}")
            return
        wait = min(self.p.backoff_cap_s, self.p.backoff_s * 2 ** (d.attempt - 1))
        self.deliveries[d.device_id] = replace(d, phase="pending", next_try_s=a.at_s + wait)

    def reading(self, r: Reading) -> None:
        d = self.deliveries.get(r.device_id)
        if d is None or r.power_w is None:
            return
        short = self.short.get(r.device_id)
        if d.phase == "failed" and short is not None and r.at_s >= short.since_s:
            late = True  # a miner left short is still read: it may comply late
        elif d.phase != "acknowledged" or d.acked_at_s is None or r.at_s < d.acked_at_s:
            return
        else:
            late = False
        d = replace(d, measured_w=r.power_w)
        if complies(d, r.power_w):
            d = replace(d, phase="complied")
            why = "after its deadline, escalation exhausted" if late else ""
            self.out.append(_outcome(d, "complied", r.at_s, self.fleet[d.device_id], why))
            self.unshort(d.device_id, r.at_s, f"complied ({d.command_id})")
        self.deliveries[d.device_id] = d

    def unshort(self, device_id: str, at_s: float, why: str) -> None:
        s = self.short.pop(device_id, None)
        if s is not None:
            detail = f"{s.short_w:.0f} W no longer short: {why}"
            self.out.append(
                _audit(s.site_id, at_s, "actuator", "shortfall_cleared", device_id, detail, self.p)
            )

    # -- time --
    def tick(self, now_s: float) -> None:
        p = self.p
        self.tokens = min(p.burst, self.tokens + (now_s - self.tokens_at_s) * p.sends_per_s)
        self.tokens_at_s = now_s
        for d in sorted(self.deliveries.values(), key=lambda d: (d.issued_at_s, d.device_id)):
            if d.phase in ("pending", "sent", "acknowledged") and now_s > d.deadline_s:
                self.fail(d, now_s, "deadline passed without measured compliance")
            elif d.phase == "sent" and now_s > d.next_try_s + p.ack_timeout_s:
                self.ack(Ack(d.device_id, d.command_id, d.attempt, False, now_s, "no answer"))
        for d in sorted(self.deliveries.values(), key=lambda d: (d.issued_at_s, d.device_id)):
            if d.phase == "pending" and d.next_try_s <= now_s:
                if self.tokens < 1:
                    break  # rate limit: the rest waits for the next tick
                self.send(d, now_s)

    def send(self, d: Delivery, now_s: float) -> None:
        dev = self.fleet[d.device_id]
        d = replace(d, attempt=d.attempt + 1, next_try_s=now_s)
        if self.p.dry_run:
            d = replace(d, phase="complied")
            self.deliveries[d.device_id] = d
            self.out.append(_outcome(d, "dry_run", now_s, dev, "dry run: nothing sent"))
            return
        self.tokens -= 1
        d = replace(d, phase="sent")
        self.deliveries[d.device_id] = d
        self.out.append(
            Send(
                d.device_id,
                dev.kind,
                d.command_id,
                d.action,
                d.power_limit_w,
                d.attempt,
                d.via,
                dev.outlet,
            )
        )
        self.out.append(_outcome(d, "sent", now_s, dev))

    def fail(self, d: Delivery, now_s: float, why: str) -> None:
        dev = self.fleet[d.device_id]
        d = replace(d, phase="failed")
        self.deliveries[d.device_id] = d
        self.out.append(_outcome(d, "failed", now_s, dev, why))
        if d.action in ("wake", "outlet_on", "outlet_off", "gpu_restore"):
            return  # escalation is for curtailment that did not happen
        shortfall = (d.measured_w if d.measured_w is not None else dev.nominal_w) - d.target_w
        if dev.outlet is not None:
            cut = f"{d.command_id}/outlet"
            self.assign(
                dev,
                cut,
                "outlet_off",
                None,
                now_s,
                now_s + self.p.outlet_deadline_s,
                "escalation",
                "outlet",
            )
            self.out.append(
                _outcome(d, "escalated", now_s, dev, f"outlet {dev.outlet} cut ({cut})")
            )
            self.out.append(
                _audit(
                    d.site_id,
                    now_s,
                    "actuator",
                    "escalate_outlet",
                    d.device_id,
                    f"outlet {dev.outlet}",
                    self.p,
                )
            )
        if self.p.escalate_tiers and shortfall > 0:
            self.next_tier(d, dev, shortfall, now_s)

    def next_tier(self, d: Delivery, dev: Device, shortfall_w: float, now_s: float) -> None:
        busy = {
            k
            for k, v in self.deliveries.items()
            if v.action in ("sleep", "set_power", "outlet_off")
        }
        # Only the short miner's own site: another site's load does not relieve this one's
        # point of interconnection.
        higher = sorted(
            (
                m
                for m in self.fleet.values()
                if m.site_id == dev.site_id and m.tier > dev.tier and m.device_id not in busy
            ),
            key=lambda m: (m.tier, m.device_id),
        )
        # Tier after tier until the expected relief covers the shortfall; what no tier
        # covers is kept as the miner's shortfall (for the GPU tier), never dropped.
        covered = 0.0
        for tier, miners in groupby(higher, key=lambda m: m.tier):
            if covered >= shortfall_w:
                break
            cid = f"{d.command_id}/tier{tier}/{d.device_id}"
            for m in miners:
                if covered >= shortfall_w:
                    break
                self.assign(m, cid, "sleep", None, now_s, now_s + self.p.deadline_s, "escalation")
                covered += m.nominal_w * (1 - self.p.sleep_floor_frac)
            self.out.append(
                _audit(
                    d.site_id,
                    now_s,
                    "actuator",
                    "escalate_tier",
                    d.device_id,
                    f"tier {tier}: {cid}",
                    self.p,
                )
            )
        left = shortfall_w - covered
        if left > 0:
            self.out.append(
                _audit(
                    d.site_id,
                    now_s,
                    "actuator",
                    "escalation_exhausted",
                    d.device_id,
                    f"{left:.0f} W short",
                    self.p,
                )
            )
            self.short[d.device_id] = Short(d.site_id, d.command_id, left, now_s)

    def pause(self, x: Pause) -> None:
        (self.paused.add if x.paused else self.paused.discard)(x.site_id)
        if x.restored_at_s is not None:
            why = f"paused by {x.actor} at {x.at_s:.3f}, kept across the restart"
            self.out.append(
                _audit(
                    x.site_id, x.restored_at_s, "actuator", "pause_restored", x.site_id, why, self.p
                )
            )
            return
        action = "pause_automatic" if x.paused else "resume_automatic"
        self.out.append(_audit(x.site_id, x.at_s, x.actor, action, x.site_id, "", self.p))

    def restore(self, r: Restore) -> None:
        for rec in r.records:
            dev = self.fleet.get(rec.device_id)
            if dev is None or rec.command_id in self.seen and rec.device_id in self.deliveries:
                continue
            self.seen.add(rec.command_id.split("/")[0])
            via: Literal["firmware", "outlet", "nvml"] = (
                "outlet" if rec.action in ("outlet_off", "outlet_on") else "firmware"
            )
            # Re-asserted with a fresh deadline: the device state is unknown after a restart.
            self.assign(
                dev,
                rec.command_id,
                rec.action,
                rec.power_limit_w,
                rec.issued_at_s,
                max(rec.deadline_s, r.at_s + self.p.deadline_s),
                rec.source,
                via,
            )
            self.deliveries[dev.device_id] = replace(
                self.deliveries[dev.device_id], next_try_s=r.at_s
            )
        self.out.append(
            _audit(
                "*",
                r.at_s,
                "actuator",
                "reassert_in_force",
                "restart",
                f"{len(r.records)} records",
                self.p,
            )
        )


def step(state: State, inputs: Iterable[Input], policy: Policy) -> tuple[State, list[Output]]:
    s = _Step(state, policy)
    for x in inputs:
        if isinstance(x, Command):
            s.command(x)
        elif isinstance(x, Ack):
            s.ack(x)
        elif isinstance(x, Reading):
            s.reading(x)
        elif isinstance(x, Tick):
            s.tick(x.now_s)
        elif isinstance(x, Pause):
            s.pause(x)
        else:
            s.restore(x)
    return s.state(), s.out


def watching(state: State) -> list[str]:
    """Devices whose power the runner should read: acknowledged, not yet complied, and
    failed ones left short (a late compliance clears their shortfall)."""
    return [
        d.device_id
        for d in state.deliveries.values()
        if d.phase == "acknowledged" or d.phase == "failed" and d.device_id in state.short
    ]


def shortfall_w(state: State, site_id: str) -> float:
    """Watts the site's miners lack after escalation ran out of tiers."""
    return sum(s.short_w for s in state.short.values() if s.site_id == site_id)
