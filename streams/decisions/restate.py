"""Restating closed seconds of site power with readings that arrived after they closed.

``combine`` emits each second once, when it closes; a reading that arrives later (a loaded
machine, a collector catching up, a partition behind the others) used to be counted and
left out of the money. A ``SiteRestater`` keeps, per site and in memory, the partials of the
last ``memory_s`` seconds; a late partial (a frame late in stage 1, ``late_key`` set, or a
cumulative partial late in ``combine``) is merged in and every closed second it changes is
recomputed the way ``combine`` computes it: the late second itself, and the seconds after
it that held the source's older reading (sample-and-hold, ``docs/cadence.md``) until the
source's next reading or its staleness limit. A second whose money-relevant values change
goes out as a ``SitePowerRestatement`` (``site.power.restated.v1``); the sink replaces the
stored second and audits before and after (``streams.marts.store.apply_restatements``).

The memory is not in a changelog, on purpose: the hot path's state stays small. A memory
that began with the site's first reading can restate from that second on (a slow start,
where the first seconds close before every partition has delivered); after a restart,
nothing before it or within a staleness span after it can be restated; those late readings
stay counted (``RestateOutput.unrestated_readings``), as do readings older than
``memory_s``. A late reading is also held onward (``combine``): the seconds that close
after it arrived hold it as if it had come on time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from schemas.events import SitePower, SitePowerPartial
from schemas.restatement import SitePowerRestatement
from streams.decisions.power import (
    FLAG_GAP,
    CombineConfig,
    SiteCombine,
    SiteIndex,
    _add_source,
    _held_power,
    _hold,
    _staleness,
)

LEGACY = "*"
"""Change key of a partial without per-source readings: it counts for its second only."""

_COMPARED = (
    "ai_w",
    "mining_w",
    "overhead_w",
    "total_w",
    "poi_meter_w",
    "poi_energy_wh",
    "ai_energy_wh",
    "mining_energy_wh",
    "ai_counter_wh",
    "ai_counter_sampled_wh",
    "hashrate_ths",
    "readings",
)
"""What makes a restated second different from the published one (money and counts)."""


@dataclass
class RestateOutput:
    restatements: list[SitePowerRestatement] = field(default_factory=list)
    unrestated_readings: int = 0
    """Late readings for seconds beyond the restater's memory (or before its start)."""


@dataclass
class SiteRestater:
    """One site's memory of recent partials and published seconds (see module doc)."""

    index: SiteIndex
    combine: CombineConfig = field(default_factory=CombineConfig)
    memory_s: int = 600
    """Seconds behind the first unclosed second that can still be restated."""
    on_time: dict[int, dict[str, SitePowerPartial]] = field(default_factory=dict)
    """second -> source partition -> its latest cumulative partial."""
    late: dict[int, dict[str, SitePowerPartial]] = field(default_factory=dict)
    """second -> source partition -> late frames of it, merged."""
    late_keys: dict[int, set[str]] = field(default_factory=dict)
    late_readings: dict[int, int] = field(default_factory=dict)
    """second -> late readings merged into it (cumulative)."""
    published: dict[int, SitePower] = field(default_factory=dict)
    """second -> what the marts have for it (emitted, then restated)."""
    pending: dict[int, set[str]] = field(default_factory=dict)
    """second not closed yet -> source keys changed by late frames (restated on close)."""
    first_s: int | None = None
    next_s: int | None = None
    """First second ``combine`` has not closed."""
    from_start: bool = False
    """The memory began with the site's first reading (``begin``): nothing came before
    ``first_s`` to be held, so its first seconds can be restated too."""

    @property
    def span_s(self) -> int:
        """Seconds of history a second's held readings come from."""
        lim = self.index.config.max_staleness
        return math.ceil(max(lim.gpu_s, lim.asic_s, lim.meter_s))

    def begin(self, fresh: bool) -> None:
        """Called before the first partials; ``fresh``: ``combine`` has seen nothing of the
        site yet (a first start, not a restart with state from the changelog)."""
        if self.first_s is None:
            self.from_start = fresh

    def observe(self, partials: Iterable[SitePowerPartial]) -> None:
        """Partials ``combine`` took on time."""
        for p in partials:
            if p.late_key is None:
                self.on_time.setdefault(p.ts_s, {})[p.source_partition] = p
                if self.first_s is None or p.ts_s < self.first_s:
                    self.first_s = p.ts_s

    def closed(self, powers: Iterable[SitePower], next_s: int) -> None:
        """Seconds ``combine`` emitted; ``next_s``: its first unclosed second now."""
        for p in powers:
            self.published[p.ts_s] = p
        self.next_s = next_s
        keep_from = next_s - self.memory_s - self.span_s
        for table in (self.on_time, self.late, self.late_keys, self.late_readings, self.published):
            for sec in [s for s in table if s < keep_from]:
                del table[sec]

    def restate(self, late: Iterable[SitePowerPartial], now_s: float) -> RestateOutput:
        """Merge late partials and restate the closed seconds they change."""
        out = RestateOutput()
        changes: dict[int, set[str]] = {}
        for p in late:
            sec = p.ts_s
            if not self._restatable(sec):
                out.unrestated_readings += p.readings
                continue
            if p.late_key is not None:
                keys = self.late_keys.setdefault(sec, set())
                if p.late_key in keys:
                    continue  # a redelivered frame
                keys.add(p.late_key)
                by_part = self.late.setdefault(sec, {})
                by_part[p.source_partition] = _merge(by_part.get(p.source_partition), p)
                new = p.readings
            else:
                by_part = self.on_time.setdefault(sec, {})
                before = by_part.get(p.source_partition)
                new = p.readings - (before.readings if before is not None else 0)
                if new <= 0:
                    continue  # a redelivered cumulative partial
                by_part[p.source_partition] = p
            self.late_readings[sec] = self.late_readings.get(sec, 0) + new
            changes.setdefault(sec, set()).update(_keys(p))
        for sec, keys in changes.items():
            self.pending.setdefault(sec, set()).update(keys)
        out.restatements = self._flush(now_s)
        return out

    def _restatable(self, sec: int) -> bool:
        if self.first_s is None or sec < self.first_s:
            return False
        if not self.from_start and sec < self.first_s + self.span_s:
            return False  # its held readings came from before this memory began
        return self.next_s is None or sec >= self.next_s - self.memory_s

    def _flush(self, now_s: float) -> list[SitePowerRestatement]:
        """Restate the changed seconds that are closed (the others wait for their close)."""
        if self.next_s is None:
            return []
        affected: set[int] = set()
        for sec in sorted(s for s in self.pending if s < self.next_s):
            for key in self.pending.pop(sec):
                affected.update(self._held_through(sec, key))
        out: list[SitePowerRestatement] = []
        for t in sorted(affected):
            power = self._power_at(t, now_s)
            before = self.published.get(t)
            if before is not None and all(
                getattr(before, f) == getattr(power, f) for f in _COMPARED
            ):
                continue
            if before is not None and FLAG_GAP in before.flags and FLAG_GAP not in power.flags:
                power = msgspec.structs.replace(power, flags=[*power.flags, FLAG_GAP])
            self.published[t] = power
            out.append(
                SitePowerRestatement(
                    site_id=power.site_id,
                    ts_s=t,
                    power=power,
                    late_readings=self.late_readings.get(t, 0),
                    restated_at_s=now_s,
                )
            )
        return out

    def _held_through(self, sec: int, key: str) -> range:
        """Closed seconds from ``sec`` that hold the reading of ``key`` stamped in ``sec``."""
        assert self.next_s is not None
        if key == LEGACY:
            return range(sec, sec + 1)
        limits = self.index.config.max_staleness
        end = min(sec + math.ceil(_staleness(limits, key)), self.next_s)
        for t in range(sec + 1, end):
            if any(key in _keys(p) for p in self._parts_at(t)):
                return range(sec, t)
        return range(sec, end)

    def _parts_at(self, sec: int) -> list[SitePowerPartial]:
        on_time = self.on_time.get(sec, {})
        late = self.late.get(sec, {})
        return [_merge(on_time.get(part), late.get(part)) for part in {**on_time, **late}]

    def _power_at(self, t: int, now_s: float) -> SitePower:
        """Second ``t`` as ``combine`` computes it, from the memory's partials."""
        held = SiteCombine(newest_s=t, next_s=t)
        limits = self.index.config.max_staleness
        for sec in range(t - self.span_s, t + 1):
            parts = self._parts_at(sec)
            if parts:
                _hold(held, sec, parts, limits)
        power, _ = _held_power(self.index, held, t, self._parts_at(t), now_s, self.combine)
        return msgspec.structs.replace(power, late_readings=self.late_readings.get(t, 0))


def _keys(p: SitePowerPartial) -> set[str]:
    keys = set(p.sources) | {"meter:" + m for m in p.meter_w}
    return keys if p.sources or not (p.ai_w or p.mining_w) else keys | {LEGACY}


def _merge(a: SitePowerPartial | None, b: SitePowerPartial | None) -> SitePowerPartial:
    """One partition's partial of a second with late frames of it added."""
    if a is None or b is None:
        got = a if b is None else b
        assert got is not None
        return got
    sources = dict(a.sources)
    for key, r in b.sources.items():
        _add_source(
            sources,
            key,
            r.ts_s,
            r.readings,
            r.ai_w,
            r.mining_w,
            r.mining_reported_w,
            r.hashrate_ths,
        )
    return msgspec.structs.replace(
        a,
        ai_w=a.ai_w + b.ai_w,
        mining_w=a.mining_w + b.mining_w,
        mining_reported_w=a.mining_reported_w + b.mining_reported_w,
        ai_counter_wh=a.ai_counter_wh + b.ai_counter_wh,
        ai_counter_sampled_wh=a.ai_counter_sampled_wh + b.ai_counter_sampled_wh,
        meter_w={**a.meter_w, **b.meter_w},
        meter_wh={**a.meter_wh, **b.meter_wh},
        readings=a.readings + b.readings,
        hashrate_ths=a.hashrate_ths + b.hashrate_ths,
        max_reading_ts_s=max(a.max_reading_ts_s, b.max_reading_ts_s),
        frames=a.frames + b.frames,
        sources=sources,
        late_key=None,
    )
