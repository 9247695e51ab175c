"""The fault schedule: which fault, when, for how long; drawn from a seeded RNG so that a
failing run can be repeated exactly."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["kill_agents", "kill_sink", "broker_restart", "stall_agents"]
KINDS: tuple[FaultKind, ...] = ("kill_agents", "kill_sink", "broker_restart", "stall_agents")


@dataclass(frozen=True)
class Fault:
    at_s: float
    """Seconds after the start of the run."""
    kind: FaultKind
    down_s: float
    """How long the process (or broker) stays down or stopped before it comes back."""


def plan_faults(
    seed: int,
    window_s: float,
    counts: Mapping[FaultKind, int],
    *,
    down_s: tuple[float, float] = (0.5, 3.0),
    stall_s: float = 15.0,
    min_gap_s: float = 5.0,
) -> list[Fault]:
    """``counts[kind]`` faults at random moments of ``[0, window_s)``, at least
    ``min_gap_s`` apart, in time order. Stalls last ``stall_s``; other faults a random
    ``down_s`` range. Raises ``ValueError`` when they cannot fit."""
    unknown = set(counts) - set(KINDS)
    if unknown:
        raise ValueError(f"plan_faults: unknown fault kinds {sorted(unknown)}; know {KINDS}")
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"plan_faults: negative count in {dict(counts)}")
    lo, hi = down_s
    if not 0 <= lo <= hi:
        raise ValueError(f"plan_faults: down_s {down_s} must be 0 <= low <= high")
    n = sum(counts.values())
    if n == 0:
        return []
    slack = window_s - (n - 1) * min_gap_s
    if slack <= 0:
        raise ValueError(f"plan_faults: {n} faults {min_gap_s} s apart do not fit in {window_s} s")
    rng = random.Random(seed)
    kinds: list[FaultKind] = [k for k in KINDS for _ in range(counts.get(k, 0))]
    rng.shuffle(kinds)
    # Sorted uniform points in the slack, then spaced by min_gap: every gap >= min_gap_s.
    points = sorted(rng.uniform(0.0, slack) for _ in range(n))
    return [
        Fault(
            at_s=p + i * min_gap_s,
            kind=k,
            down_s=stall_s if k == "stall_agents" else rng.uniform(lo, hi),
        )
        for i, (p, k) in enumerate(zip(points, kinds, strict=True))
    ]
