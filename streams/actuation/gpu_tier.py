"""The GPU tier as a pure state machine: ``gpu_step(state, inputs, ...) -> (state, outputs)``.

The controller expresses its need as a mining target on ``curtailment.events.v1``: the
miners can go no lower than their sleep floor (a slept miner still draws ~5 % of nominal;
a stock Antminer's cut outlet 0 W), so a grid or 4CP target below that floor is a need the
miners cannot meet. That remainder goes to GPU power caps (``gpu_caps.plan_caps``: allowed
tenants only, never below the floor of a card). Each cap is delivered and measured like a
miner's command (``sent``, ``acknowledged`` or ``failed``, ``complied`` on a power reading
taken after the acknowledgement, ``failed`` at the deadline) and restored, to the limit the
card had before, when the need ends or ``CapPolicy.max_duration_s`` passes. Miners that
failed to comply when escalation ran out of tiers (``delivery.shortfall_w``, fed as
``MinersShort``) raise the need of the site's active event by their shortfall, where its
reasons allow GPU caps, and lower it again when they comply or are released. The runner
turns ``SetLimit`` into NVML calls and feeds back ``GpuAck`` and ``GpuReading``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from schemas.actuation import ActuationOutcome, AuditEvent, CommandInForce, OutcomeKind
from schemas.events import CurtailmentEvent
from streams.actuation.delivery import OUTLET_ONLY_KINDS, Ack, Device, Policy, Reading, Tick, _audit
from streams.actuation.gpu_caps import CapPolicy, GpuSlot, plan_caps

GpuAction = Literal["gpu_cap", "gpu_restore"]
GpuPhase = Literal["sent", "acknowledged", "complied", "failed", "retry", "done"]
ENDED_KINDS = ("released", "ended")
"""Event kinds after which the controller no longer needs the reduction."""


def miners_floor_w(devices: Iterable[Device], site_id: str, p: Policy) -> float:
    """The lowest mining power this actuator's miners of ``site_id`` can reach."""
    return sum(
        0.0 if d.kind in OUTLET_ONLY_KINDS else d.nominal_w * p.sleep_floor_frac
        for d in devices
        if d.site_id == site_id
    )


def gpu_reason(reasons: Sequence[str], cap: CapPolicy) -> str | None:
    """The event's first reason that allows GPU caps (grid before 4CP), if any."""
    return next((r for r in ("grid", "4cp", *reasons) if r in reasons and r in cap.reasons), None)


def need_beyond_miners(ev: CurtailmentEvent, floor_w: float) -> float:
    """Watts the controller wants off that the miners cannot give; 0 once the need ended."""
    if ev.kind in ENDED_KINDS:
        return 0.0
    return max(0.0, floor_w - ev.target_mining_w)


# ---- inputs and outputs ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuNeed:
    site_id: str
    event_id: str
    reasons: tuple[str, ...]
    need_w: float
    at_s: float
    """The controller's decision time (the event's ``ts_s``): response is measured from it."""
    deadline_s: float
    slots: tuple[GpuSlot, ...]
    """The GPUs as read when the need arrived."""
    ended: bool = False
    """The event was released or ended: no shortfall raises it any more."""


@dataclass(frozen=True, slots=True)
class MinersShort:
    """What the site's miners lack after escalation ran out of tiers, when it changes."""

    site_id: str
    short_w: float
    at_s: float
    slots: tuple[GpuSlot, ...]
    """The GPUs as read now (used when no cap of the event is in force yet)."""


@dataclass(frozen=True, slots=True)
class SetLimit:
    """Set one card's NVML power limit (a cap, or the limit it had before)."""

    device_id: str
    node: str
    index: int
    limit_w: float
    command_id: str
    action: GpuAction
    attempt: int


@dataclass(frozen=True, slots=True)
class GpuRecover:
    """Caps in force left by an earlier actuator (``actuation.in_force.v1``) at a start:
    their saved limits and clocks died with it, so they go back to the default limits."""

    records: tuple[CommandInForce, ...]
    slots: tuple[GpuSlot, ...]
    at_s: float


GpuInput = GpuNeed | MinersShort | Ack | Reading | GpuRecover | Tick
"""``Ack`` and ``Reading`` are the miners' own: one for a device this tier does not track
is ignored, so the runner hands every one to both state machines."""
GpuOutput = SetLimit | ActuationOutcome | AuditEvent | CommandInForce

# ---- state -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Track:
    """One card's current cap or restore."""

    device_id: str
    node: str
    index: int
    site_id: str
    command_id: str
    action: GpuAction
    limit_w: float
    issued_at_s: float
    deadline_s: float
    phase: GpuPhase = "sent"
    attempt: int = 1
    acked_at_s: float | None = None
    measured_w: float | None = None
    next_try_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Episode:
    """The caps in force for one curtailment event of one site."""

    event_id: str
    reason: str
    need_w: float
    started_s: float
    baseline: tuple[GpuSlot, ...]
    """The cards before any cap: re-plans start from them, restores go back to them."""
    plans: int = 1


@dataclass(frozen=True, slots=True)
class TierState:
    episodes: dict[str, Episode] = field(default_factory=dict)
    tracks: dict[str, Track] = field(default_factory=dict)
    expired: frozenset[str] = frozenset()
    """Events whose caps reached the maximum duration: never capped again."""
    needs: dict[str, GpuNeed] = field(default_factory=dict)
    """Site -> the need of its active (not ended) event, before any miners' shortfall."""
    short: dict[str, float] = field(default_factory=dict)
    """Site -> what its miners lack after escalation (``MinersShort``)."""


def device_id(node: str, index: int) -> str:
    return f"{node}/gpu{index}"


class _Step:
    def __init__(self, s: TierState, cap: CapPolicy, p: Policy, tier: int) -> None:
        self.cap, self.p, self.tier = cap, p, tier
        self.episodes = dict(s.episodes)
        self.tracks = dict(s.tracks)
        self.expired = set(s.expired)
        self.needs = dict(s.needs)
        self.short = dict(s.short)
        self.out: list[GpuOutput] = []

    def state(self) -> TierState:
        return TierState(
            self.episodes, self.tracks, frozenset(self.expired), self.needs, self.short
        )

    def outcome(self, t: Track, kind: OutcomeKind, at_s: float, detail: str = "") -> None:
        target = t.limit_w * (1 + self.cap.tolerance) if t.action == "gpu_cap" else t.limit_w
        self.out.append(
            ActuationOutcome(
                outcome_id=f"{t.command_id}/{t.device_id}/{kind}/{t.attempt}",
                command_id=t.command_id,
                site_id=t.site_id,
                device_id=t.device_id,
                kind=kind,
                action=t.action,
                via="nvml",
                power_limit_w=t.limit_w,
                target_w=target,
                measured_w=t.measured_w,
                attempt=t.attempt,
                tier=self.tier,
                issued_at_s=t.issued_at_s,
                deadline_s=t.deadline_s,
                at_s=at_s,
                response_s=at_s - t.issued_at_s if kind == "complied" else None,
                detail=detail,
            )
        )

    def audit(self, site: str, at_s: float, action: str, subject: str, detail: str) -> None:
        self.out.append(_audit(site, at_s, "actuator", action, subject, detail, self.p))

    def send(self, t: Track, at_s: float) -> None:
        self.tracks[t.device_id] = t
        self.out.append(
            CommandInForce(
                site_id=t.site_id,
                device_id=t.device_id,
                command_id=t.command_id,
                action=t.action,
                power_limit_w=t.limit_w,
                issued_at_s=t.issued_at_s,
                deadline_s=t.deadline_s,
            )
        )
        if self.p.dry_run:
            self.tracks[t.device_id] = replace(t, phase="done")
            self.outcome(t, "dry_run", at_s, "dry run: nothing sent")
            return
        self.out.append(
            SetLimit(t.device_id, t.node, t.index, t.limit_w, t.command_id, t.action, t.attempt)
        )
        self.outcome(t, "sent", at_s)

    # -- the controller's need, raised by the miners' shortfall --
    def need(self, n: GpuNeed) -> None:
        old = self.needs.pop(n.site_id, None)
        if n.ended:
            self.plan(n)
            return
        self.needs[n.site_id] = n
        raised = self.with_short(n)
        if raised is not n and (old is None or old.event_id != n.event_id):
            self.raised(n, raised.need_w - n.need_w, n.at_s)
        self.plan(raised)

    def miners_short(self, m: MinersShort) -> None:
        before = self.short.pop(m.site_id, 0.0)
        if m.short_w > 0:
            self.short[m.site_id] = m.short_w
        n = self.needs.get(m.site_id)
        if n is None or m.short_w == before or gpu_reason(n.reasons, self.cap) is None:
            return  # no active event, or one whose reasons never use GPUs (economic)
        self.raised(n, m.short_w, m.at_s)
        self.plan(replace(self.with_short(n), at_s=m.at_s, slots=m.slots or n.slots))

    def with_short(self, n: GpuNeed) -> GpuNeed:
        short = self.short.get(n.site_id, 0.0)
        if short <= 0 or gpu_reason(n.reasons, self.cap) is None:
            return n  # economic or site_limit: never covered by GPUs
        return replace(n, need_w=n.need_w + short)

    def raised(self, n: GpuNeed, short_w: float, at_s: float) -> None:
        if short_w > 0:
            why = f"gpu need raised by {short_w:.0f} W: miners short after escalation"
        else:
            why = f"gpu need back to {n.need_w:.0f} W: miners no longer short"
        self.audit(n.site_id, at_s, "gpu_need_shortfall", n.event_id, why)

    def plan(self, n: GpuNeed) -> None:
        ep = self.episodes.get(n.site_id)
        reason = gpu_reason(n.reasons, self.cap)
        if ep is not None and (ep.event_id != n.event_id or n.need_w <= 0 or reason is None):
            self.restore(n.site_id, n.at_s, "the need ended")
            ep = None
        if n.need_w <= 0 or n.event_id in self.expired:
            return
        if reason is None:
            self.audit(
                n.site_id,
                n.at_s,
                "gpu_caps_not_allowed",
                n.event_id,
                f"{n.need_w:.0f} W beyond the miners; reasons {list(n.reasons)} do not allow "
                f"GPU caps ({sorted(self.cap.reasons)})",
            )
            return
        if ep is not None and abs(n.need_w - ep.need_w) <= max(1.0, 0.02 * ep.need_w):
            return  # the same need: the caps in force stand
        baseline = ep.baseline if ep is not None else self.baseline(n.slots)
        plan = plan_caps(baseline, n.need_w, reason, self.cap)
        plans = ep.plans + 1 if ep is not None else 1
        started = ep.started_s if ep is not None else n.at_s
        cid = f"{n.event_id}/gpu/{plans}"
        self.episodes[n.site_id] = Episode(n.event_id, reason, n.need_w, started, baseline, plans)
        deadline = n.deadline_s if n.deadline_s > n.at_s else n.at_s + self.p.deadline_s
        capped = set()
        for c in plan.caps:
            dev = device_id(c.node, c.index)
            capped.add(dev)
            old = self.tracks.get(dev)
            if old is not None and old.action == "gpu_cap" and old.limit_w == c.limit_w:
                continue
            self.send(
                Track(dev, c.node, c.index, n.site_id, cid, "gpu_cap", c.limit_w, n.at_s, deadline),
                n.at_s,
            )
        for dev, t in list(self.tracks.items()):
            if t.site_id == n.site_id and t.action == "gpu_cap" and dev not in capped:
                self.restore_one(t, f"{n.event_id}/gpu/{plans}/restore", n.at_s)
        until = started + self.cap.max_duration_s
        refused = f"; refused: {'; '.join(plan.refused)}" if plan.refused else ""
        self.audit(
            n.site_id,
            n.at_s,
            "gpu_cap" if plan.caps else "gpu_caps_none",
            cid,
            f"{reason}: {n.need_w:.0f} W beyond the miners; {len(plan.caps)} GPUs capped, "
            f"{plan.expected_free_w:.0f} W expected, until {until:.0f}{refused}",
        )

    def baseline(self, slots: Sequence[GpuSlot]) -> tuple[GpuSlot, ...]:
        """Cards as read, with the limit of any still being restored put back first."""
        out = []
        for s in slots:
            t = self.tracks.get(device_id(s.node, s.index))
            if t is not None and t.action == "gpu_restore" and t.phase != "done":
                s = replace(s, limit_w=t.limit_w)
            out.append(s)
        return tuple(out)

    def restore(self, site: str, at_s: float, why: str) -> None:
        ep = self.episodes.pop(site)
        cid = f"{ep.event_id}/gpu/restore"
        n = 0
        for t in list(self.tracks.values()):
            if t.site_id == site and t.action == "gpu_cap":
                self.restore_one(t, cid, at_s, ep)
                n += 1
        self.audit(site, at_s, "gpu_restore", cid, f"{n} GPUs: {why}")

    def restore_one(self, t: Track, cid: str, at_s: float, ep: Episode | None = None) -> None:
        ep = ep or self.episodes.get(t.site_id)
        before = next(
            (
                s.limit_w
                for s in (ep.baseline if ep else ())
                if s.index == t.index and s.node == t.node
            ),
            None,
        )
        if before is None:
            return
        self.send(
            Track(
                t.device_id,
                t.node,
                t.index,
                t.site_id,
                cid,
                "gpu_restore",
                before,
                at_s,
                at_s + self.p.deadline_s,
            ),
            at_s,
        )

    def recover(self, r: GpuRecover) -> None:
        slots = {device_id(s.node, s.index): s for s in r.slots}
        n = 0
        for rec in r.records:
            s = slots.get(rec.device_id)
            if s is None or rec.action != "gpu_cap":
                continue
            cid = f"{rec.command_id}/restart"
            self.send(
                Track(
                    rec.device_id,
                    s.node,
                    s.index,
                    rec.site_id,
                    cid,
                    "gpu_restore",
                    s.default_limit_w,
                    r.at_s,
                    r.at_s + self.p.deadline_s,
                ),
                r.at_s,
            )
            n += 1
        if n:
            self.audit(
                r.records[0].site_id,
                r.at_s,
                "gpu_restore",
                "restart",
                f"{n} GPUs capped before the restart back to their default limits",
            )

    # -- feedback --
    def ack(self, a: Ack) -> None:
        t = self.tracks.get(a.device_id)
        if t is None or t.command_id != a.command_id or t.attempt != a.attempt:
            return
        if t.phase != "sent":
            return
        if a.ok:
            phase: GpuPhase = "acknowledged" if t.action == "gpu_cap" else "done"
            t = replace(t, phase=phase, acked_at_s=a.at_s)
            self.tracks[t.device_id] = t
            self.outcome(t, "acknowledged", a.at_s, a.detail)
            return
        self.outcome(t, "failed", a.at_s, a.detail)
        if t.action == "gpu_restore" and t.attempt < self.p.max_attempts:
            # A card left capped costs its tenant: retry with backoff (a cap is not retried:
            # NVML refuses a bad limit the same way every time).
            wait = min(self.p.backoff_cap_s, self.p.backoff_s * 2 ** (t.attempt - 1))
            self.tracks[t.device_id] = replace(t, phase="retry", next_try_s=a.at_s + wait)
            return
        self.tracks[t.device_id] = replace(t, phase="failed")
        if t.action == "gpu_restore":
            self.audit(t.site_id, a.at_s, "gpu_restore_failed", t.device_id, a.detail)

    def reading(self, r: Reading) -> None:
        t = self.tracks.get(r.device_id)
        if t is None or r.power_w is None or t.phase != "acknowledged" or t.acked_at_s is None:
            return
        if r.at_s < t.acked_at_s:
            return  # a reading from before the cap says nothing about it
        t = replace(t, measured_w=r.power_w)
        if r.power_w <= t.limit_w * (1 + self.cap.tolerance):
            t = replace(t, phase="complied")
            self.outcome(t, "complied", r.at_s)
        self.tracks[t.device_id] = t

    def tick(self, now: float) -> None:
        for site, ep in list(self.episodes.items()):
            if now >= ep.started_s + self.cap.max_duration_s:
                self.expired.add(ep.event_id)
                self.restore(site, now, f"maximum duration {self.cap.max_duration_s:.0f} s")
        for t in list(self.tracks.values()):
            if t.action == "gpu_cap" and t.phase in ("sent", "acknowledged") and now > t.deadline_s:
                self.tracks[t.device_id] = replace(t, phase="failed")
                self.outcome(t, "failed", now, "deadline passed without measured compliance")
            elif t.phase == "retry" and now >= t.next_try_s:
                self.send(replace(t, phase="sent", attempt=t.attempt + 1), now)


def gpu_step(
    state: TierState, inputs: Iterable[GpuInput], cap: CapPolicy, p: Policy, tier: int = 0
) -> tuple[TierState, list[GpuOutput]]:
    s = _Step(state, cap, p, tier)
    for x in inputs:
        if isinstance(x, GpuNeed):
            s.need(x)
        elif isinstance(x, MinersShort):
            s.miners_short(x)
        elif isinstance(x, Ack):
            s.ack(x)
        elif isinstance(x, Reading):
            s.reading(x)
        elif isinstance(x, GpuRecover):
            s.recover(x)
        else:
            s.tick(x.now_s)
    return s.state(), s.out


def gpu_watching(state: TierState) -> list[Track]:
    """Caps whose power the runner should read: acknowledged, not yet complied."""
    return [t for t in state.tracks.values() if t.phase == "acknowledged"]
