"""GPU energy-counter steps, computed where a GPU's previous reading is known: the collector.

NVML's counter (``energy_mj``, mJ since the driver loaded) integrates in the GPU, so the
difference between two polls is the GPU's energy between them, whatever its power did. A
*sum* of counters is not a counter (a GPU that joins or leaves the set moves it by its whole
count), so the difference is taken per GPU, by the process that polled it both times. A
frame then carries, per GPU, ``energy_step_mj`` (the difference), ``step_s`` (the time
between the polls) and ``step_power_w`` (the power it reported at the first poll: what
sample-and-hold holds over the step). The power stage replaces the held power of the step
with the counter's energy (``streams.decisions.power``, ``docs/cadence.md``).

No step (all three None) where the GPU was not in the previous poll (it joined, or this
collector just started), its counter is missing in either poll, or the counter went back
(a driver reload restarts it at zero: the energy before the reload is unknown).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import msgspec

from schemas.telemetry import GpuFrame


@dataclass(frozen=True, slots=True)
class GpuPoll:
    """One poll of a source: per GPU its key, counter and power, in frame order."""

    ts_s: float
    keys: Sequence[Hashable]
    """Identity of each GPU across polls (node id and index, or a UUID)."""
    energy_mj: Sequence[int | None]
    power_w: Sequence[float]


@dataclass(frozen=True, slots=True)
class CounterSteps:
    """The three step columns of a frame (``schemas.telemetry.GpuFrame``)."""

    energy_step_mj: list[int | None]
    step_s: list[float | None]
    step_power_w: list[float | None]

    @property
    def any(self) -> bool:
        return any(e is not None for e in self.energy_step_mj)


def counter_steps(prev: GpuPoll | None, cur: GpuPoll) -> CounterSteps:
    """Each GPU of ``cur``'s step since ``prev`` (the same source's previous poll)."""
    n = len(cur.keys)
    steps = CounterSteps([None] * n, [None] * n, [None] * n)
    if prev is None or cur.ts_s <= prev.ts_s:
        return steps
    before = {k: i for i, k in enumerate(prev.keys)}
    span = cur.ts_s - prev.ts_s
    for i, (key, e1) in enumerate(zip(cur.keys, cur.energy_mj, strict=True)):
        j = before.get(key)
        if j is None or e1 is None:
            continue
        e0 = prev.energy_mj[j]
        if e0 is None or e1 < e0:
            continue
        steps.energy_step_mj[i] = e1 - e0
        steps.step_s[i] = span
        steps.step_power_w[i] = prev.power_w[j]
    return steps


def frame_poll(frame: GpuFrame) -> GpuPoll:
    """A frame's poll, each GPU keyed by its node id and index."""
    return GpuPoll(
        ts_s=frame.ts_s,
        keys=list(zip(frame.node_id, frame.gpu_index, strict=True)),
        energy_mj=frame.energy_mj,
        power_w=frame.power_w,
    )


def with_steps(frame: GpuFrame, steps: CounterSteps) -> GpuFrame:
    """``frame`` carrying ``steps``; unchanged (the columns left out) if no GPU has a step."""
    if not steps.any:
        return frame
    return msgspec.structs.replace(
        frame,
        energy_step_mj=steps.energy_step_mj,
        step_s=steps.step_s,
        step_power_w=steps.step_power_w,
    )


class StepTracker:
    """The previous poll of each source, for collectors that poll several (one per node).

    Every poll given is remembered, a poll without clean steps too: the next step starts
    from the latest reading (after a counter reset, from the reset counter).
    """

    def __init__(self) -> None:
        self._last: dict[str, GpuPoll] = {}

    def step(self, source_id: str, poll: GpuPoll) -> CounterSteps:
        steps = counter_steps(self._last.get(source_id), poll)
        self._last[source_id] = poll
        return steps

    def frame(self, frame: GpuFrame) -> GpuFrame:
        """``frame`` with each GPU's step since its source's previous frame given here."""
        return with_steps(frame, self.step(frame.source_id, frame_poll(frame)))
