"""The AI side as a curtailment tier: GPU power caps through NVML, bounded by policy.

Used only when a grid emergency or a 4CP window needs more than the miners can give
(``CapPolicy.reasons``). ``plan_caps`` is pure: which GPUs may be capped (tenant/job allow
list), to what (never below the card's NVML minimum nor ``min_cap_frac`` of its default
limit), for at most ``max_duration_s``. ``GpuCapAgent`` is the node agent: it applies a
plan with ``nvmlDeviceSetPowerManagementLimit`` (mW), measures ``nvmlDeviceGetPowerUsage``
like a miner's reading, and restores each card's limit as it was when the cap expires or
on ``restore_all``. Setting limits needs root on the node; no GPU machine was available to
this work, so it is tested against a fake NVML module only (docs/actuation.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from schemas.actuation import ActuationOutcome


@dataclass(frozen=True, slots=True)
class CapPolicy:
    min_cap_frac: float = 0.6
    """Never cap a card below this share of its default limit (training stays stable)."""
    max_duration_s: float = 2 * 3600.0
    """A cap expires after this long even if nobody lifts it (ECRS sustains 2 h)."""
    tenants: frozenset[str] = frozenset()
    """Tenants or jobs whose GPUs may be capped; empty: none may be."""
    reasons: frozenset[str] = frozenset({"grid", "4cp"})
    tolerance: float = 0.05


@dataclass(frozen=True, slots=True)
class GpuSlot:
    index: int
    tenant: str
    default_limit_w: float
    min_limit_w: float
    max_limit_w: float
    limit_w: float
    power_w: float


@dataclass(frozen=True, slots=True)
class Cap:
    index: int
    limit_w: float
    expected_free_w: float


@dataclass(frozen=True, slots=True)
class CapPlan:
    caps: tuple[Cap, ...]
    expected_free_w: float
    refused: tuple[str, ...] = ()


def floor_w(slot: GpuSlot, p: CapPolicy) -> float:
    return max(slot.min_limit_w, slot.default_limit_w * p.min_cap_frac)


def plan_caps(slots: Sequence[GpuSlot], need_w: float, reason: str, p: CapPolicy) -> CapPlan:
    """Caps freeing about ``need_w`` watts, spread evenly over the allowed GPUs."""
    if reason not in p.reasons:
        return CapPlan(
            (), 0.0, (f"reason {reason!r} does not allow GPU caps ({sorted(p.reasons)})",)
        )
    allowed = [s for s in slots if s.tenant in p.tenants]
    refused = tuple(
        f"gpu{s.index}: tenant {s.tenant!r} not cappable"
        for s in slots
        if s.tenant not in p.tenants
    )
    room = {s.index: max(0.0, s.power_w - floor_w(s, p)) for s in allowed}
    total = sum(room.values())
    if total <= 0 or need_w <= 0:
        return CapPlan((), 0.0, refused)
    share = min(1.0, need_w / total)
    caps = tuple(
        Cap(s.index, max(floor_w(s, p), s.power_w - room[s.index] * share), room[s.index] * share)
        for s in allowed
        if room[s.index] > 0
    )
    return CapPlan(caps, sum(c.expected_free_w for c in caps), refused)


@dataclass
class GpuCapAgent:
    """One node's agent. ``nvml`` is pynvml or a module with the same functions."""

    nvml: ModuleType | Any
    node_id: str
    site_id: str
    tenants: dict[int, str] = field(default_factory=dict)
    policy: CapPolicy = field(default_factory=CapPolicy)
    clock: Any = time.time
    saved: dict[int, float] = field(default_factory=dict)
    """Limit (W) each capped card had before, to restore it exactly."""
    expires_at: dict[int, float] = field(default_factory=dict)

    def _h(self, i: int) -> Any:
        return self.nvml.nvmlDeviceGetHandleByIndex(i)

    def slots(self) -> list[GpuSlot]:
        out = []
        for i in range(self.nvml.nvmlDeviceGetCount()):
            h = self._h(i)
            lo, hi = self.nvml.nvmlDeviceGetPowerManagementLimitConstraints(h)
            out.append(
                GpuSlot(
                    i,
                    self.tenants.get(i, ""),
                    self.nvml.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1000.0,
                    lo / 1000.0,
                    hi / 1000.0,
                    self.nvml.nvmlDeviceGetPowerManagementLimit(h) / 1000.0,
                    self.nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
                )
            )
        return out

    def apply(self, plan: CapPlan, command_id: str) -> list[ActuationOutcome]:
        now = self.clock()
        out = []
        for c in plan.caps:
            h = self._h(c.index)
            self.saved.setdefault(c.index, self.nvml.nvmlDeviceGetPowerManagementLimit(h) / 1000.0)
            self.nvml.nvmlDeviceSetPowerManagementLimit(h, int(c.limit_w * 1000))
            self.expires_at[c.index] = now + self.policy.max_duration_s
            out.append(
                self._outcome(command_id, c.index, "acknowledged", "gpu_cap", c.limit_w, now)
            )
        return out

    def measure(self, command_id: str, caps: Iterable[Cap]) -> list[ActuationOutcome]:
        """``complied`` for every capped card now drawing at or below its cap."""
        now = self.clock()
        out = []
        for c in caps:
            w = self.nvml.nvmlDeviceGetPowerUsage(self._h(c.index)) / 1000.0
            if w <= c.limit_w * (1 + self.policy.tolerance):
                out.append(
                    self._outcome(command_id, c.index, "complied", "gpu_cap", c.limit_w, now, w)
                )
        return out

    def restore_due(self, command_id: str, force: bool = False) -> list[ActuationOutcome]:
        """Put back the saved limit of every cap that expired (or all, with ``force``)."""
        now = self.clock()
        out = []
        for i, until in list(self.expires_at.items()):
            if force or now >= until:
                before = self.saved.pop(i)
                self.nvml.nvmlDeviceSetPowerManagementLimit(self._h(i), int(before * 1000))
                del self.expires_at[i]
                out.append(self._outcome(command_id, i, "acknowledged", "gpu_restore", before, now))
        return out

    def _outcome(
        self,
        command_id: str,
        index: int,
        kind: Any,
        action: Any,
        limit_w: float,
        now: float,
        measured_w: float | None = None,
    ) -> ActuationOutcome:
        dev = f"{self.node_id}/gpu{index}"
        return ActuationOutcome(
            outcome_id=f"{command_id}/{dev}/{kind}/{action}",
            command_id=command_id,
            site_id=self.site_id,
            device_id=dev,
            kind=kind,
            action=action,
            via="nvml",
            power_limit_w=limit_w,
            target_w=limit_w,
            measured_w=measured_w,
            issued_at_s=now,
            deadline_s=now + self.policy.max_duration_s,
            at_s=now,
        )
