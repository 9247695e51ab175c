"""The AI side as a curtailment tier: GPU power caps through NVML, bounded by policy.

Used only when a grid emergency or a 4CP window needs more than the miners can give
(``CapPolicy.reasons``). ``plan_caps`` is pure: which GPUs may be capped (tenant/job allow
list), to what (never below the card's NVML minimum nor ``min_cap_frac`` of its default
limit), for at most ``max_duration_s`` (``gpu_tier`` keeps the clock and the restores).
``GpuCapAgent`` is the node's NVML access: it reads the cards, sets a limit with
``nvmlDeviceSetPowerManagementLimit`` (mW) and reads ``nvmlDeviceGetPowerUsage``. Setting
limits needs root on the node; this work is tested against a fake NVML module
(docs/actuation.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


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
    node: str = ""


@dataclass(frozen=True, slots=True)
class Cap:
    index: int
    limit_w: float
    expected_free_w: float
    node: str = ""


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
        f"{s.node + '/' if s.node else ''}gpu{s.index}: tenant {s.tenant!r} not cappable"
        for s in slots
        if s.tenant not in p.tenants
    )
    room = {(s.node, s.index): max(0.0, s.power_w - floor_w(s, p)) for s in allowed}
    total = sum(room.values())
    if total <= 0 or need_w <= 0:
        return CapPlan((), 0.0, refused)
    share = min(1.0, need_w / total)
    caps = tuple(
        Cap(s.index, max(floor_w(s, p), s.power_w - r * share), r * share, s.node)
        for s in allowed
        if (r := room[(s.node, s.index)]) > 0
    )
    return CapPlan(caps, sum(c.expected_free_w for c in caps), refused)


@dataclass
class GpuCapAgent:
    """One node's NVML access, nothing else: what to cap and when is ``gpu_tier``'s.
    ``nvml`` is pynvml (initialised) or a module with the same functions."""

    nvml: ModuleType | Any
    node_id: str
    tenants: dict[int, str] = field(default_factory=dict)
    """Card index -> tenant or job running on it (``CapPolicy.tenants`` says who is cappable)."""

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
                    self.node_id,
                )
            )
        return out

    def set_limit(self, index: int, limit_w: float) -> float:
        """Set one card's limit (raises NVML's error); returns the limit it reads back."""
        h = self._h(index)
        self.nvml.nvmlDeviceSetPowerManagementLimit(h, int(limit_w * 1000))
        return float(self.nvml.nvmlDeviceGetPowerManagementLimit(h)) / 1000.0

    def power_w(self, index: int) -> float:
        return float(self.nvml.nvmlDeviceGetPowerUsage(self._h(index))) / 1000.0
