"""Per-second site power by use, in two stages so that it scales across Kafka partitions.

1. ``fold_partials`` runs next to each telemetry partition. It folds a batch of frames into
   running per-(site, second) sums (``SitePowerPartial``). A partial is cumulative for its
   ``source_partition``: a later partial for the same site-second and partition replaces the
   earlier one, so a redelivered partial (at-least-once) is harmless.
2. ``combine`` runs once per site (the partial topic is keyed by site). It merges the
   partials of every partition and, behind an explicit allowed lateness, emits one
   ``SitePower`` per closed second.

Lateness: second ``s`` closes when the newest second seen for the site is more than
``lateness_s`` ahead of it (``s < newest - lateness_s``). Readings for a closed second are
never merged in (a second is emitted once) and never dropped silently: both stages return
them as ``LateReadings`` (send both to the alerts and the late-data topic); those found by
``combine`` are also counted in the next ``SitePower.late_readings``. Use the same
``lateness_s`` in both stages: then whatever the partition stage has forgotten, combine has
closed. Frames stamped far in the future must be rejected upstream (``max_clock_skew_s``):
they would move the newest second and make everything else late.

Readings at any cadence (``docs/cadence.md``): collectors poll every 1 to 60 s, not every
second. Stage 1 records each source's reading in the second it is stamped
(``SitePowerPartial.sources``); ``combine`` holds it, per source, until that source's next
reading, up to the site's ``max_staleness`` for its kind; past it the source is a gap
(``SitePower.stale_sources``), left out and counted, never zero-filled or interpolated
(DESIGN.md "Energy from power"). A second closes with the held readings even when no frame
was stamped in it; only a second in which no source is fresh is a ``Gap``.
Energy registers are not held: ``SitePower.poi_energy_wh`` (``ai_energy_wh``,
``mining_energy_wh``) is the role's registers read in that very second (the marts difference
it, ``transforms.energy``), None in the others.

Which source wins: a sub-meter that reported is trusted over device sums (stock ASIC
firmware reports no wattage and device sums miss cooling and losses); device sums are the
fallback and are reconciled against the meters (``Reconciliation``).

States are mutated in place and returned, to keep the hot path allocation-free; a caller
must use the returned state and not keep the one it passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import msgspec

from schemas.events import SitePower, SitePowerPartial, SourceReading
from schemas.site import MaxStaleness, SiteConfig
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame


class GpuSums(msgspec.Struct, kw_only=True, frozen=True):
    """A checked GPU frame already summed (a packed frame, ``streams.agents.gpu_columns``):
    all that the fold needs of it, with no value per reading."""

    site_id: str
    source_id: str
    ts_s: float
    seq: int
    readings: int
    power_w: float
    """Sum of the frame's ``power_w`` column."""
    node_ids: list[str]
    """The frame's distinct node ids."""
    counter_wh: float = 0.0
    counter_sampled_wh: float = 0.0
    counter_held_max_s: int = 0
    """``gpu_counter_sums`` of the frame."""


class AsicSums(msgspec.Struct, kw_only=True, frozen=True):
    """A checked ASIC frame of one model already summed (a packed frame,
    ``streams.agents.asic_columns``): what the fold and the quiet case of the miner alerts
    need of it; ``full()`` gives the whole frame when an alert needs each miner."""

    site_id: str
    source_id: str
    ts_s: float
    seq: int
    readings: int
    model: str
    """The one model of every miner in the frame."""
    hashrate_ths: float
    """Sum of reported hashrate."""
    reported_w: float
    """Sum of the reported wattages."""
    missing_w: int
    """Miners that reported no wattage."""
    missing_hashrate_ths: float
    """Hashrate of those miners (their power is estimated from it)."""
    min_hashing_ths: float
    """Lowest hashrate of the miners in state ``hashing``; infinity if none is."""
    max_temp_c: float | None
    """None when no miner reported a temperature."""
    miner_ids: list[str]
    """The frame's miners."""
    full: Callable[[], AsicFrame]


Frame = MeterFrame | GpuFrame | AsicFrame | GpuSums | AsicSums


def readings_of(f: Frame) -> int:
    return f.readings if isinstance(f, GpuSums | AsicSums) else len(f.power_w)


SETTLEMENT_INTERVAL_S = 900
"""A settlement interval (``transforms.calendar.INTERVAL_S``; stage 1 does not load polars)."""


def gpu_counter_sums(
    ts_s: float,
    energy_step_mj: Sequence[int | None],
    step_s: Sequence[float | None],
    step_power_w: Sequence[float | None],
) -> tuple[float, float, int]:
    """A GPU frame's counter steps that the power stage can place: ``(counter_wh,
    sampled_wh, held_max_s)``, attributed to the frame's second.

    A GPU's step spans its previous poll to this one. Sample-and-hold held that poll's power
    over the whole seconds ``floor(previous) .. floor(ts_s) - 1`` (``held`` of them), so over
    those seconds the counter's energy replaces ``step_power_w x held``. The marts book a
    second's steps to the interval of the second before it (``transforms.energy``): the
    interval of the last held second, so a poll just after an interval's end closes that
    interval's last step. Like a meter register's step, a step whose held seconds straddle
    an interval boundary is left to the samples (its energy's split would be a guess).
    ``held_max_s``: the longest step kept; the caller drops the frame's steps when that is
    beyond the source's staleness (the samples were not held that long)."""
    if not step_s:
        return 0.0, 0.0, 0
    if (
        None not in step_s
        and None not in energy_step_mj
        and None not in step_power_w
        and min(step_s) == max(step_s)  # type: ignore[type-var]  # no None: checked
    ):
        # The usual frame: every GPU stepped from the same poll. C-level sums, no loop.
        held = _held(ts_s, step_s[0])  # type: ignore[arg-type]
        if held is None:
            return 0.0, 0.0, 0
        energy = sum(energy_step_mj)  # type: ignore[arg-type]
        return energy / 3.6e6, math.fsum(step_power_w) * held / 3600.0, held  # type: ignore[arg-type]
    counter_mj = 0
    sampled_ws = 0.0
    held_max = 0
    for e, span, w in zip(energy_step_mj, step_s, step_power_w, strict=True):
        if e is None or span is None or w is None:
            continue
        held = _held(ts_s, span)
        if held is None:
            continue
        counter_mj += e
        sampled_ws += w * held
        held_max = max(held_max, held)
    return counter_mj / 3.6e6, sampled_ws / 3600.0, held_max


def _held(ts_s: float, span: float) -> int | None:
    """Whole seconds the step's first poll was held; None if they straddle a boundary."""
    sec = math.floor(ts_s)
    start = math.floor(ts_s - span + 1e-6)  # 1e-6: a stamp minus its own step, in floats
    held = sec - start
    if held and start // SETTLEMENT_INTERVAL_S != (sec - 1) // SETTLEMENT_INTERVAL_S:
        return None
    return held


FLAG_POI_MISSING = "poi_meter_missing"
FLAG_GAP = "gap"
"""The seconds just before this one had no readings at all (see ``Gap``)."""
FLAG_AI_FROM_DEVICES = "ai_from_devices"
FLAG_MINING_FROM_DEVICES = "mining_from_devices"
FLAG_OVERHEAD_NEGATIVE = "overhead_negative"
FLAG_STALE_SOURCES = "stale_sources"
"""Some known sources' readings are older than their staleness limit: left out, counted in
``SitePower.stale_sources``."""
METER_MISSING_PREFIX = "meter_missing:"
"""Flag ``meter_missing:<meter_id>``: a configured meter did not report this second."""


class SiteIndex(msgspec.Struct, kw_only=True, frozen=True):
    """What the power stages look up per reading, derived once from a ``SiteConfig``."""

    config: SiteConfig
    j_per_th: dict[str, float]
    node_overhead_w: dict[str, float]
    """Node-id prefix ``f"{site}-{pool}"`` -> overhead of one node of that pool, W."""
    default_node_overhead_w: float
    """For nodes whose id matches no pool: node-weighted mean of the pools."""
    meters_by_role: dict[str, list[str]]
    node_cache: dict[str, float] = msgspec.field(default_factory=dict)
    """Node id -> overhead W, filled as node ids are seen (the prefix lookup, once per node)."""
    source_nodes: dict[str, tuple[list[str], float]] = msgspec.field(default_factory=dict)
    """Frame source -> (its last node id column, that column's overhead W): a source sends the
    same nodes every second, and comparing two lists is a third of the cost of a set."""

    @property
    def site_id(self) -> str:
        return self.config.site_id


def index_site(site: SiteConfig) -> SiteIndex:
    """Build the lookup tables of ``site`` (rebuild when a new config arrives)."""
    pools = site.gpu_pools
    nodes = sum(p.nodes for p in pools)
    default = sum(p.node_overhead_w * p.nodes for p in pools) / nodes if nodes else 0.0
    roles: dict[str, list[str]] = {"poi": [], "ai": [], "mining": [], "aux": []}
    for m in site.meters:
        roles[m.role].append(m.meter_id)
    return SiteIndex(
        config=site,
        j_per_th={m.model: m.j_per_th for m in site.asic_models},
        node_overhead_w={f"{site.site_id}-{p.name}": p.node_overhead_w for p in pools},
        default_node_overhead_w=default,
        meters_by_role=roles,
    )


# --------------------------------------------------------------------------- stage 1


class PartialState(msgspec.Struct, kw_only=True):
    """Running partial sums of one telemetry partition."""

    sums: dict[str, dict[int, SitePowerPartial]] = {}
    """site -> second -> running partial."""
    seen: dict[str, dict[int, set[str]]] = {}
    """site -> second -> ``kind:source:seq`` of the frames already folded (dedup)."""
    newest_s: dict[str, int] = {}


class LateReadings(msgspec.Struct, kw_only=True, frozen=True):
    """Readings that arrived after their second had closed; counted, never merged."""

    site_id: str
    ts_s: int
    source_partition: str
    readings: int
    newest_s: int
    """Newest second of the site when they arrived."""


class FoldOutput(msgspec.Struct, kw_only=True):
    partials: list[SitePowerPartial]
    """One per site-second touched by the batch, cumulative for this partition; then one
    per late frame (``late_key`` set: the frame alone, for restatement)."""
    late: list[LateReadings]
    duplicate_frames: int = 0
    unknown_site_frames: dict[str, int] = {}
    """site id -> frames of sites with no config (dead-letter material)."""
    unknown_model_readings: dict[str, int] = {}
    """ASIC model -> readings of models not in the site config (no power estimate)."""


_NODE_CACHE_MAX = 1_000_000
"""Far above any site's node count: only a stream of made-up node ids reaches it."""


def _node_overhead_w(idx: SiteIndex, source_id: str, node_ids: list[str]) -> float:
    last = idx.source_nodes.get(source_id)
    if last is not None and last[0] == node_ids:
        return last[1]
    cache = idx.node_cache
    if len(cache) > _NODE_CACHE_MAX or len(idx.source_nodes) > _NODE_CACHE_MAX:
        cache.clear()
        idx.source_nodes.clear()
    nodes = set(node_ids)
    # Not ``nodes - cache.keys()``: that copies every key of the cache (tens of thousands
    # of nodes at a large site), 600 us a frame against 2 us for this.
    for node in [n for n in nodes if n not in cache]:
        prefix = node.rsplit("-", 1)[0]
        cache[node] = idx.node_overhead_w.get(prefix, idx.default_node_overhead_w)
    overhead = sum(map(cache.__getitem__, nodes))
    # Kept with one string object per node (not the frame's 8 copies), so that the column
    # outlives its frame at a tenth of the memory.
    canonical = {n: n for n in nodes}
    idx.source_nodes[source_id] = ([canonical[n] for n in node_ids], overhead)
    return overhead


def _asic_power(idx: SiteIndex, f: AsicFrame, unknown: dict[str, int]) -> tuple[float, float]:
    """(reported W, estimated W) of one ASIC frame.

    A miner without wattage is estimated as nameplate scaled by reported hashrate:
    (nominal TH/s x J/TH) x reported / nominal = J/TH x reported TH/s.
    """
    power = f.power_w
    missing = power.count(None)
    if missing == 0:
        return sum(power), 0.0  # type: ignore[arg-type]
    reported = 0.0 if missing == len(power) else sum(p for p in power if p is not None)
    models = set(f.model)
    jpt = idx.j_per_th
    if len(models) == 1:
        (model,) = models
        if model not in jpt:
            unknown[model] = unknown.get(model, 0) + missing
            return reported, 0.0
        if missing == len(power):
            hashrate = sum(f.hashrate_ths)
        else:
            hashrate = sum(h for p, h in zip(power, f.hashrate_ths, strict=True) if p is None)
        return reported, jpt[model] * hashrate
    estimated = 0.0
    for p, m, h in zip(power, f.model, f.hashrate_ths, strict=True):
        if p is None:
            j = jpt.get(m)
            if j is None:
                unknown[m] = unknown.get(m, 0) + 1
            else:
                estimated += j * h
    return reported, estimated


def _asic_sums_power(idx: SiteIndex, f: AsicSums, unknown: dict[str, int]) -> tuple[float, float]:
    """``_asic_power`` of a one-model frame already summed."""
    if f.missing_w == 0:
        return f.reported_w, 0.0
    j = idx.j_per_th.get(f.model)
    if j is None:
        unknown[f.model] = unknown.get(f.model, 0) + f.missing_w
        return f.reported_w, 0.0
    return f.reported_w, j * f.missing_hashrate_ths


def _add_source(
    sources: dict[str, SourceReading],
    key: str,
    ts_s: float,
    readings: int,
    ai_w: float,
    mining_w: float,
    reported_w: float,
    hashrate_ths: float,
) -> None:
    """Record one frame as its source's reading in the second. Frames of one poll (same
    stamp: a collector may split a poll by model or rack) add up; of two polls stamped in
    one second the later holds, as a meter's later scrape does."""
    prev = sources.get(key)
    if prev is not None:
        if ts_s < prev.ts_s:
            return
        if ts_s == prev.ts_s:
            readings += prev.readings
            ai_w += prev.ai_w
            mining_w += prev.mining_w
            reported_w += prev.mining_reported_w
            hashrate_ths += prev.hashrate_ths
    sources[key] = SourceReading(
        ts_s=ts_s,
        ai_w=ai_w,
        mining_w=mining_w,
        mining_reported_w=reported_w,
        hashrate_ths=hashrate_ths,
        readings=readings,
    )


def fold_partials(
    state: PartialState,
    frames: Iterable[Frame],
    sites: Mapping[str, SiteIndex],
    *,
    source_partition: str,
    lateness_s: int = 2,
) -> tuple[PartialState, FoldOutput]:
    """Fold a batch of decoded frames into running per-(site, second) partial sums.

    A frame is one ``ts_s`` for all its readings. Frames repeated (same kind, source and
    seq within a second) are counted once. Seconds more than ``lateness_s`` behind the
    newest second of the site are forgotten after the batch; frames for them come back
    as ``LateReadings``.
    """
    touched: dict[tuple[str, int], SitePowerPartial] = {}
    late: dict[tuple[str, int], int] = {}
    late_frames: list[Frame] = []
    out = FoldOutput(partials=[], late=[])
    unknown_models: dict[str, int] = {}
    for f in frames:
        idx = sites.get(f.site_id)
        if idx is None:
            out.unknown_site_frames[f.site_id] = out.unknown_site_frames.get(f.site_id, 0) + 1
            continue
        sec = math.floor(f.ts_s)
        site_sums = state.sums.setdefault(f.site_id, {})
        newest = state.newest_s.get(f.site_id)
        n = readings_of(f)
        if newest is not None and sec < newest - lateness_s and sec not in site_sums:
            late[(f.site_id, sec)] = late.get((f.site_id, sec), 0) + n
            late_frames.append(f)
            continue
        if newest is None or sec > newest:
            state.newest_s[f.site_id] = sec
        key = _frame_key(f)
        seen = state.seen.setdefault(f.site_id, {}).setdefault(sec, set())
        if key in seen:
            out.duplicate_frames += 1
            continue
        seen.add(key)
        p = site_sums.get(sec)
        if p is None:
            p = site_sums[sec] = SitePowerPartial(
                site_id=f.site_id,
                ts_s=sec,
                source_partition=source_partition,
                meter_w={},
                meter_wh={},
                sources={},
            )
        touched[(f.site_id, sec)] = p
        p.readings += n
        p.frames += 1
        if f.ts_s > p.max_reading_ts_s:
            p.max_reading_ts_s = f.ts_s
        if isinstance(f, GpuSums | GpuFrame):
            if isinstance(f, GpuSums):
                ai = f.power_w + _node_overhead_w(idx, f.source_id, f.node_ids)
                counter = (f.counter_wh, f.counter_sampled_wh, f.counter_held_max_s)
            else:
                ai = sum(f.power_w) + _node_overhead_w(idx, f.source_id, f.node_id)
                counter = _frame_counter_sums(f)
            p.ai_w += ai
            # Steps longer than the GPU staleness were not held all along: samples stand.
            if counter[2] <= idx.config.max_staleness.gpu_s:
                p.ai_counter_wh += counter[0]
                p.ai_counter_sampled_wh += counter[1]
            _add_source(p.sources, "gpu:" + f.source_id, f.ts_s, n, ai, 0.0, 0.0, 0.0)
        elif isinstance(f, AsicSums | AsicFrame):
            if isinstance(f, AsicSums):
                reported, estimated = _asic_sums_power(idx, f, unknown_models)
                hashrate = f.hashrate_ths
            else:
                reported, estimated = _asic_power(idx, f, unknown_models)
                hashrate = sum(f.hashrate_ths)
            p.mining_reported_w += reported
            p.mining_w += reported + estimated
            p.hashrate_ths += hashrate
            _add_source(
                p.sources,
                "asic:" + f.source_id,
                f.ts_s,
                n,
                0.0,
                reported + estimated,
                reported,
                hashrate,
            )
        else:
            # Two scrapes of one meter in a second: the later one wins (power, not energy).
            p.meter_w.update(zip(f.meter_id, f.power_w, strict=True))
            # The register is energy: kept for its own second only (stage 2 never holds it).
            p.meter_wh.update(
                (m, e) for m, e in zip(f.meter_id, f.energy_wh, strict=True) if e is not None
            )
    out.partials = [
        msgspec.structs.replace(
            p, meter_w=dict(p.meter_w), meter_wh=dict(p.meter_wh), sources=dict(p.sources)
        )
        for p in touched.values()
    ]
    out.late = [
        LateReadings(
            site_id=site_id,
            ts_s=sec,
            source_partition=source_partition,
            readings=n,
            newest_s=state.newest_s[site_id],
        )
        for (site_id, sec), n in sorted(late.items())
    ]
    out.partials.extend(_late_partials(late_frames, sites, source_partition))
    out.unknown_model_readings = unknown_models
    for site_id, newest in state.newest_s.items():
        for table in (state.sums.get(site_id, {}), state.seen.get(site_id, {})):
            for sec in [s for s in table if s < newest - lateness_s]:
                del table[sec]
    return state, out


def _frame_counter_sums(f: GpuFrame) -> tuple[float, float, int]:
    if f.energy_step_mj is None or f.step_s is None or f.step_power_w is None:
        return 0.0, 0.0, 0
    return gpu_counter_sums(f.ts_s, f.energy_step_mj, f.step_s, f.step_power_w)


def _late_partials(
    frames: list[Frame], sites: Mapping[str, SiteIndex], source_partition: str
) -> list[SitePowerPartial]:
    """Each late frame folded alone (its second is forgotten here), keyed for dedup."""
    out: list[SitePowerPartial] = []
    for f in frames:
        _, folded = fold_partials(
            PartialState(sums={}, seen={}, newest_s={}),
            [f],
            sites,
            source_partition=source_partition,
        )
        key = _frame_key(f)
        out.extend(msgspec.structs.replace(p, late_key=key) for p in folded.partials)
    return out


def _frame_key(f: Frame) -> str:
    """``kind:source:seq``: a frame's identity within its second (dedup)."""
    if isinstance(f, MeterFrame):
        kind = "m"
    elif isinstance(f, GpuFrame | GpuSums):
        kind = "g"
    else:
        kind = "a"
    return f"{kind}:{f.source_id}:{f.seq}"


# --------------------------------------------------------------------------- stage 2


class CombineConfig(msgspec.Struct, kw_only=True, frozen=True):
    lateness_s: int = 2
    """Seconds of event time a second stays open behind the newest second seen."""
    idle_close_s: float | None = None
    """Also close seconds older than ``now_s - idle_close_s`` (wall clock), so that a site
    that goes silent still gets its gap reported. Leave None when replaying history."""
    closed_memory_s: int = 300
    """How long the readings counted for a closed second are remembered, so that a
    cumulative partial arriving late counts only its new readings as late."""
    partition_watermarks: bool = False
    """Close a second only once every live source partition has moved past it (the minimum
    of per-partition watermarks, as Flink and Kafka Streams do), not just when the newest
    second is ``lateness_s`` ahead. The agents turn it on: when stage 1 works through a
    backlog, one partition's partials can run minutes of event time ahead of another's."""
    partition_idle_s: int | None = None
    """With ``partition_watermarks``: a partition whose newest second is this far behind the
    site's newest stops holding seconds open (stalled or gone; its stragglers count as
    late). None: ``max(30, 10 x lateness_s)``."""
    partition_idle_wall_s: float | None = None
    """With ``partition_watermarks``: a partition that sent a partial within this many
    seconds of wall clock (``now_s``) holds seconds open however far behind in event time
    it is. Working through a backlog, stage 1 can send minutes of one partition's event
    time before another's next partial: lagging is not stalling. None: event time only."""
    max_open_s: int | None = None
    """Bound on the seconds held open (newest - first unclosed): a partition that lags
    further behind than this cannot keep the others' seconds, and so the state, growing
    without end; what it sends for seconds closed this way counts as late. None: no bound."""
    close_complete: bool = False
    """Also close a second as soon as it is complete: every live partition (see the
    watermark rules above) has sent at least as many frames for it as it sent for the last
    closed second it was in. Seconds then close on their last frame instead of waiting
    ``lateness_s`` and the next second; the other rules stay as the backstop for sources
    that fall silent or late. With partition_watermarks only."""
    complete_window_s: int = 120
    """With ``close_complete``: expect of a partition the most frames it sent for any closed
    second of the last this-many seconds it was in. Sources polled every 5 or 60 s at
    different phases send a different number of frames each second, and a second must not
    close on the fewest (its other frames would count as late). A partition that loses a
    source waits for lateness for this long before expecting less. 1: the last second only."""
    stale_forget_s: int = 3600
    """A source silent this long leaves the held table (and the ``stale_sources`` count):
    a rack taken out of service is reported stale for an hour, not for ever."""
    startup_hold_wall_s: float = 0.0
    """Close nothing of a site until this many seconds of wall clock after its first
    partial: a partition not seen yet cannot hold seconds open, and at startup on a
    backlog the partitions' first partials arrive spread over a moment of wall clock."""


_DEFAULT_COMBINE = CombineConfig()


class HeldReading(msgspec.Struct, kw_only=True, frozen=True):
    """A source's latest reading in a closed second, held until its next one."""

    stamp_s: int
    """The second it was folded into."""
    reading: SourceReading | None = None
    """GPU or ASIC source."""
    meter_w: float = 0.0
    """Meter (when ``reading`` is None)."""


class SiteCombine(msgspec.Struct, kw_only=True):
    open: dict[int, dict[str, SitePowerPartial]] = {}
    """second -> source partition -> latest partial."""
    newest_s: int
    next_s: int
    """First second not yet closed."""
    emitted_any: bool = False
    counted: dict[int, dict[str, int]] = {}
    """Closed second -> source partition -> readings already accounted for."""
    pending_late: int = 0
    """Late readings not yet reported in a ``SitePower``."""
    gap_before: bool = False
    partition_newest: dict[str, int] = {}
    """Source partition -> newest second it has sent: the per-partition watermarks."""
    partition_arrived_s: dict[str, float] = {}
    """Source partition -> wall clock (``now_s``) of its latest partial."""
    first_arrived_s: float = -math.inf
    """Wall clock (``now_s``) of the site's first partial."""
    expected_frames: dict[str, int] = {}
    """Source partition -> the most frames it sent for a closed second it was in, over the
    last ``complete_window_s`` (``frames_seen``)."""
    frames_seen: dict[str, dict[int, int]] = {}
    """Source partition -> closed second -> frames it sent for it, within the window."""
    held: dict[str, HeldReading] = {}
    """``gpu:<source>``, ``asic:<source>``, ``meter:<meter_id>`` -> its latest reading stamped
    before ``next_s``: sample-and-hold for sources polled every 5 or 60 s."""


class CombineState(msgspec.Struct, kw_only=True):
    sites: dict[str, SiteCombine] = {}


class Gap(msgspec.Struct, kw_only=True, frozen=True):
    """Seconds ``[start_s, end_s)`` of a site with no readings at all: missing data."""

    site_id: str
    start_s: int
    end_s: int


class Reconciliation(msgspec.Struct, kw_only=True, frozen=True):
    """Device sum vs sub-meter for one use and one second."""

    site_id: str
    ts_s: int
    use: Literal["ai", "mining"]
    meter_w: float
    device_w: float
    """Device sum (GPUs + node overhead, or ASICs reported + estimated)."""
    estimated_w: float
    """Part of ``device_w`` estimated from nameplate (mining only)."""
    difference_fraction: float
    """|device - meter| / meter (inf when the meter reads 0 and devices do not)."""
    within_tolerance: bool


class CombineOutput(msgspec.Struct, kw_only=True):
    powers: list[SitePower]
    late: list[LateReadings]
    gaps: list[Gap]
    reconciliations: list[Reconciliation]
    late_partials: list[SitePowerPartial] = []
    """Partials that arrived after their second closed, with new readings: what a
    restatement of that second needs (``streams.decisions.restate``)."""


def combine(
    state: CombineState,
    partials: Iterable[SitePowerPartial],
    sites: Mapping[str, SiteIndex],
    *,
    now_s: float,
    config: CombineConfig | None = None,
) -> tuple[CombineState, CombineOutput]:
    """Merge partials per site-second and emit ``SitePower`` for the seconds that closed.

    ``now_s`` is the wall clock, stamped into ``SitePower.emitted_s``. Partials of sites
    with no config raise ``KeyError`` naming the site (the agent should dead-letter them).
    """
    config = config or _DEFAULT_COMBINE
    out = CombineOutput(powers=[], late=[], gaps=[], reconciliations=[])
    for p in partials:
        if p.site_id not in sites:
            raise KeyError(f"combine: no SiteConfig for site {p.site_id!r} (partial {p.ts_s})")
        sc = state.sites.get(p.site_id)
        if p.late_key is not None:
            # A frame late in stage 1 (counted there): restated, never combined; it may
            # still be the newest reading of its source for the seconds not closed yet.
            if sc is not None:
                _adopt_late(sc, p)
            continue
        if sc is None:
            sc = state.sites[p.site_id] = SiteCombine(
                newest_s=p.ts_s, next_s=p.ts_s, first_arrived_s=now_s
            )
        sc.partition_arrived_s[p.source_partition] = now_s
        # A late partial still makes its partition a known source: otherwise a partition
        # first heard of after the seconds it sent had closed (the other worker's, at a
        # rebalance) never holds a second open, and stays late for good.
        if p.ts_s > sc.partition_newest.get(p.source_partition, -1):
            sc.partition_newest[p.source_partition] = p.ts_s
        if p.ts_s < sc.next_s:
            if sc.emitted_any:
                _count_late(sc, p, out)
                _adopt_late(sc, p)
                continue
            sc.next_s = p.ts_s  # nothing closed yet: the site's first second moves back
        sc.open.setdefault(p.ts_s, {})[p.source_partition] = p
        if p.ts_s > sc.newest_s:
            sc.newest_s = p.ts_s
    for site_id, sc in state.sites.items():
        if not sc.emitted_any and now_s - sc.first_arrived_s < config.startup_hold_wall_s:
            continue
        close_before = sc.newest_s - config.lateness_s
        if config.partition_watermarks:
            close_before = min(close_before, _watermark(sc, config, now_s))
            if config.max_open_s is not None:
                close_before = max(close_before, sc.newest_s - config.max_open_s)
        if config.idle_close_s is not None:
            close_before = max(close_before, math.floor(now_s - config.idle_close_s) + 1)
        if close_before > sc.next_s:
            _close(site_id, sc, sites[site_id], close_before, now_s, config, out)
        if config.close_complete and config.partition_watermarks:
            complete_before = _complete_before(sc, config, now_s)
            if complete_before > sc.next_s:
                _close(site_id, sc, sites[site_id], complete_before, now_s, config, out)
    return state, out


def close_all(
    state: CombineState,
    sites: Mapping[str, SiteIndex],
    *,
    now_s: float,
    config: CombineConfig | None = None,
) -> tuple[CombineState, CombineOutput]:
    """End of input: close every open second, as the agents do once each is complete (an
    offline computation over a finished stream uses this after its last ``combine``)."""
    config = config or _DEFAULT_COMBINE
    out = CombineOutput(powers=[], late=[], gaps=[], reconciliations=[])
    for site_id, sc in state.sites.items():
        if sc.open:
            _close(site_id, sc, sites[site_id], max(sc.open) + 1, now_s, config, out)
    return state, out


def refresh_liveness(state: CombineState, now_s: float) -> None:
    """Count every partition a site knows as heard from at ``now_s``.

    The wall-clock liveness rule (``partition_idle_wall_s``) reads silence as a stalled
    source, which is only true while this worker keeps up. After the worker itself was not
    running (restarted, stopped, or stalled past its session) the silence was its own: a
    partition still behind in its backlog would be taken for dead and the seconds closed
    without it (found by the fault suite: 73 seconds closed with two partitions of five
    after a SIGSTOP). The agents call this then; the partitions get a fresh window.
    """
    for sc in state.sites.values():
        for part in sc.partition_newest:
            sc.partition_arrived_s[part] = max(sc.partition_arrived_s.get(part, now_s), now_s)


def _live_partitions(sc: SiteCombine, config: CombineConfig, now_s: float) -> list[str]:
    idle = config.partition_idle_s
    if idle is None:
        idle = max(30, 10 * config.lateness_s)
    wall = config.partition_idle_wall_s
    arrived = sc.partition_arrived_s
    return [
        part
        for part, t in sc.partition_newest.items()
        if t >= sc.newest_s - idle
        or (wall is not None and now_s - arrived.get(part, -math.inf) <= wall)
    ]


def _watermark(sc: SiteCombine, config: CombineConfig, now_s: float) -> int:
    live = _live_partitions(sc, config, now_s)
    return min(sc.partition_newest[p] for p in live) if live else sc.newest_s


def _complete_before(sc: SiteCombine, config: CombineConfig, now_s: float) -> int:
    """First second from ``next_s`` on that is not complete (see ``close_complete``)."""
    live = _live_partitions(sc, config, now_s)
    sec = sc.next_s
    if not live or not sc.emitted_any:
        return sec  # what to expect is learnt from the seconds closed the usual way
    while True:
        nxt = sec
        if nxt not in sc.open:
            # Seconds with no data at all before a complete one are a gap: the sources that
            # completed the later second have moved on.
            later = [s for s in sc.open if s > sec]
            if not later:
                return sec
            nxt = min(later)
        parts = sc.open[nxt]
        for part in live:
            got = parts.get(part)
            if got is None or got.frames < max(1, sc.expected_frames.get(part, 1)):
                return sec
        sec = nxt + 1


def _adopt_late(sc: SiteCombine, p: SitePowerPartial) -> None:
    """Hold a late partial's readings where they are newer than the held ones: the seconds
    that close from now on hold them, as they would have had the reading come on time
    (the closed ones are the restater's). Staleness is judged at each close, as usual.

    Not ``_hold``: that takes seconds in order, so it replaces a meter's reading outright
    and a source's of the same second; a late partial may be older than either, or only
    the late frames of a second whose others were held on time."""
    held = sc.held
    for key, r in p.sources.items():
        h = held.get(key)
        if h is None or h.stamp_s < p.ts_s:
            held[key] = HeldReading(stamp_s=p.ts_s, reading=r)
    for meter_id, w in p.meter_w.items():
        h = held.get("meter:" + meter_id)
        if h is None or h.stamp_s < p.ts_s:
            held["meter:" + meter_id] = HeldReading(stamp_s=p.ts_s, meter_w=w)


def _count_late(sc: SiteCombine, p: SitePowerPartial, out: CombineOutput) -> None:
    counted = sc.counted.get(p.ts_s)
    before = counted.get(p.source_partition, 0) if counted is not None else 0
    new = p.readings - before
    if new <= 0:
        return  # a redelivered partial: nothing new
    if counted is not None:
        counted[p.source_partition] = p.readings
    sc.pending_late += new
    out.late_partials.append(p)
    out.late.append(
        LateReadings(
            site_id=p.site_id,
            ts_s=p.ts_s,
            source_partition=p.source_partition,
            readings=new,
            newest_s=sc.newest_s,
        )
    )


def _close(
    site_id: str,
    sc: SiteCombine,
    idx: SiteIndex,
    close_before: int,
    now_s: float,
    config: CombineConfig,
    out: CombineOutput,
) -> None:
    """Close ``[next_s, close_before)``: each second holds every source's latest reading
    within its staleness; a second with none at all is a gap."""
    limits = idx.config.max_staleness
    fresh_until = max(
        (h.stamp_s + _staleness(limits, k) for k, h in sc.held.items()), default=-math.inf
    )
    sec = sc.next_s
    while sec < close_before:
        by_partition = sc.open.pop(sec, None)
        if by_partition is None:
            if sec >= fresh_until:
                # Nothing at all for these seconds: a gap, reported once it is known closed.
                later = [s for s in sc.open if sec < s < close_before]
                end = min(later) if later else close_before
                if sc.emitted_any:
                    out.gaps.append(Gap(site_id=site_id, start_s=sec, end_s=end))
                    sc.gap_before = True
                sec = sc.next_s = end
                continue
            by_partition = {}
        fresh_until = max(fresh_until, _hold(sc, sec, by_partition.values(), limits))
        power, recs = _held_power(idx, sc, sec, list(by_partition.values()), now_s, config)
        flags = power.flags
        if sc.gap_before:
            flags = [*flags, FLAG_GAP]
        power = msgspec.structs.replace(power, late_readings=sc.pending_late, flags=flags)
        sc.pending_late = 0
        sc.gap_before = False
        out.powers.append(power)
        out.reconciliations.extend(recs)
        sc.counted[sec] = {k: v.readings for k, v in by_partition.items()}
        for part, partial in by_partition.items():
            seen = sc.frames_seen.setdefault(part, {})
            seen[sec] = partial.frames
            for old in [t for t in seen if t <= sec - config.complete_window_s]:
                del seen[old]
            sc.expected_frames[part] = max(seen.values())
        sec = sc.next_s = sec + 1
        sc.emitted_any = True
    forget_before = sc.next_s - config.closed_memory_s
    for sec in [s for s in sc.counted if s < forget_before]:
        del sc.counted[sec]


def _staleness(limits: MaxStaleness, key: str) -> float:
    kind = key[: key.index(":")]
    if kind == "asic":
        return limits.asic_s
    if kind == "gpu":
        return limits.gpu_s
    return limits.meter_s


def _hold(
    sc: SiteCombine, sec: int, partials: Iterable[SitePowerPartial], limits: MaxStaleness
) -> float:
    """Make the readings of second ``sec`` the held ones; returns the second from which all
    of them are stale. A source in two partitions (a rebalance) holds its later stamp."""
    held = sc.held
    until = -math.inf
    for p in partials:
        for key, r in p.sources.items():
            h = held.get(key)
            if h is None or h.stamp_s < sec or h.reading is None or r.ts_s >= h.reading.ts_s:
                held[key] = HeldReading(stamp_s=sec, reading=r)
                until = max(until, sec + _staleness(limits, key))
        for meter_id, w in p.meter_w.items():
            held["meter:" + meter_id] = HeldReading(stamp_s=sec, meter_w=w)
            until = max(until, sec + limits.meter_s)
    return until


def _held_power(
    idx: SiteIndex,
    sc: SiteCombine,
    sec: int,
    partials: list[SitePowerPartial],
    now_s: float,
    config: CombineConfig,
) -> tuple[SitePower, list[Reconciliation]]:
    """``SitePower`` of second ``sec`` from the held table (after ``_hold`` of ``sec``)."""
    limits = idx.config.max_staleness
    ai: list[float] = []
    mining: list[float] = []
    reported: list[float] = []
    hashrate: list[float] = []
    meters: dict[str, float] = {}
    registers: dict[str, float] = {}
    meter_stamps: dict[str, float] = {}
    asic_stamps: list[float] = []
    held_sources = held_readings = stale = 0
    forget: list[str] = []
    for key, h in sc.held.items():
        age = sec - h.stamp_s
        if age >= _staleness(limits, key):
            stale += 1
            if age >= config.stale_forget_s:
                forget.append(key)
            continue
        r = h.reading
        if age > 0:
            held_sources += 1
            held_readings += r.readings if r is not None else 1
        if r is None:
            meters[key[6:]] = h.meter_w
            meter_stamps[key[6:]] = h.stamp_s  # the second: a lower bound of its stamp
        else:
            if key.startswith("asic:"):
                asic_stamps.append(r.ts_s)
            ai.append(r.ai_w)
            mining.append(r.mining_w)
            reported.append(r.mining_reported_w)
            hashrate.append(r.hashrate_ths)
    for key in forget:
        del sc.held[key]
    for p in partials:
        registers.update(p.meter_wh)
        if not p.sources:
            # A partial from before per-source readings: its sums count for its second only.
            ai.append(p.ai_w)
            mining.append(p.mining_w)
            reported.append(p.mining_reported_w)
            hashrate.append(p.hashrate_ths)
            if p.mining_w:
                asic_stamps.append(float(sec))
    mining_ids = idx.meters_by_role["mining"]
    if mining_ids and all(i in meters for i in mining_ids):
        mining_stamps = [meter_stamps[i] for i in mining_ids]
    else:
        mining_stamps = asic_stamps
    power, recs = _power(
        idx,
        sec,
        counters=_counters(partials),
        device_ai=math.fsum(ai),
        device_mining=math.fsum(mining),
        reported_mining=math.fsum(reported),
        hashrate_ths=math.fsum(hashrate),
        meters=meters,
        registers=registers,
        readings=sum(p.readings for p in partials),
        now_s=now_s,
    )
    flags = power.flags
    if stale:
        flags = [*flags, FLAG_STALE_SOURCES]
    power = msgspec.structs.replace(
        power,
        held_sources=held_sources,
        held_readings=held_readings,
        stale_sources=stale,
        mining_reading_s=min(mining_stamps, default=None),
        flags=flags,
    )
    return power, recs


def site_power(
    idx: SiteIndex, ts_s: int, partials: list[SitePowerPartial], *, now_s: float
) -> tuple[SitePower, list[Reconciliation]]:
    """``SitePower`` of one second from the partials of all partitions alone (no readings
    held from earlier seconds), plus reconciliation."""
    meters: dict[str, float] = {}
    registers: dict[str, float] = {}
    for p in partials:
        meters.update(p.meter_w)
        registers.update(p.meter_wh)
    return _power(
        idx,
        ts_s,
        counters=_counters(partials),
        device_ai=math.fsum(p.ai_w for p in partials),
        device_mining=math.fsum(p.mining_w for p in partials),
        reported_mining=math.fsum(p.mining_reported_w for p in partials),
        hashrate_ths=math.fsum(p.hashrate_ths for p in partials),
        meters=meters,
        registers=registers,
        readings=sum(p.readings for p in partials),
        now_s=now_s,
    )


def _counters(partials: Iterable[SitePowerPartial]) -> tuple[float, float] | None:
    """The second's GPU counter steps and what the samples held over them, Wh; None if none
    ended in it. Energy: from this second's partials only, never held."""
    parts = [p for p in partials if p.ai_counter_wh or p.ai_counter_sampled_wh]
    if not parts:
        return None
    return (
        math.fsum(p.ai_counter_wh for p in parts),
        math.fsum(p.ai_counter_sampled_wh for p in parts),
    )


def _power(
    idx: SiteIndex,
    ts_s: int,
    *,
    counters: tuple[float, float] | None = None,
    device_ai: float,
    device_mining: float,
    reported_mining: float,
    hashrate_ths: float,
    meters: dict[str, float],
    registers: Mapping[str, float],
    readings: int,
    now_s: float,
) -> tuple[SitePower, list[Reconciliation]]:
    """``registers``: energy registers read in this second only, by meter id."""
    site = idx.config
    flags: list[str] = []
    for m in site.meters:
        if m.meter_id not in meters:
            flags.append(METER_MISSING_PREFIX + m.meter_id)

    def metered(role: str) -> float | None:
        ids = idx.meters_by_role[role]
        if not ids or any(i not in meters for i in ids):
            return None
        return math.fsum(meters[i] for i in ids)

    def register(role: str) -> float | None:
        # Every meter of the role read in this very second, else None (never held).
        ids = idx.meters_by_role[role]
        if not ids or any(i not in registers for i in ids):
            return None
        return math.fsum(registers[i] for i in ids)

    poi = metered("poi")
    ai_meter = metered("ai")
    mining_meter = metered("mining")
    recs: list[Reconciliation] = []
    tol = site.meter_tolerance_fraction
    if ai_meter is not None and device_ai > 0:
        recs.append(_reconcile(site.site_id, ts_s, "ai", ai_meter, device_ai, 0.0, tol))
    if mining_meter is not None and device_mining > 0:
        estimated = device_mining - reported_mining
        recs.append(
            _reconcile(site.site_id, ts_s, "mining", mining_meter, device_mining, estimated, tol)
        )
    if ai_meter is None:
        ai = device_ai
        if idx.meters_by_role["ai"]:
            flags.append(FLAG_AI_FROM_DEVICES)
    else:
        ai = ai_meter
        counters = None  # the AI meter is the measurement; the counters only sum GPUs
    if mining_meter is None:
        mining = device_mining
        if idx.meters_by_role["mining"]:
            flags.append(FLAG_MINING_FROM_DEVICES)
    else:
        mining = mining_meter
    if poi is None:
        flags.append(FLAG_POI_MISSING)
        overhead = site.overhead_fixed_mw * 1e6 + site.overhead_fraction * (ai + mining)
    else:
        overhead = poi - ai - mining
        if overhead < 0:
            flags.append(FLAG_OVERHEAD_NEGATIVE)
    contract = site.contracted_mw(ts_s) * 1e6
    power = SitePower(
        site_id=site.site_id,
        ts_s=ts_s,
        ai_w=ai,
        mining_w=mining,
        overhead_w=overhead,
        total_w=ai + mining + overhead,
        poi_meter_w=poi,
        poi_energy_wh=register("poi"),
        ai_energy_wh=register("ai"),
        mining_energy_wh=register("mining"),
        ai_counter_wh=None if counters is None else counters[0],
        ai_counter_sampled_wh=None if counters is None else counters[1],
        contract_w=contract,
        surplus_w=contract - ai - overhead,
        hashrate_ths=hashrate_ths,
        readings=readings,
        flags=flags,
        emitted_s=now_s,
    )
    return power, recs


def _reconcile(
    site_id: str,
    ts_s: int,
    use: Literal["ai", "mining"],
    meter_w: float,
    device_w: float,
    estimated_w: float,
    tolerance: float,
) -> Reconciliation:
    diff = abs(device_w - meter_w)
    frac = diff / abs(meter_w) if meter_w else (math.inf if diff else 0.0)
    return Reconciliation(
        site_id=site_id,
        ts_s=ts_s,
        use=use,
        meter_w=meter_w,
        device_w=device_w,
        estimated_w=estimated_w,
        difference_fraction=frac,
        within_tolerance=frac <= tolerance,
    )
