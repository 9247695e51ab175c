"""Stage 1, one telemetry partition at a time: decode, dead-letter, fold into partials.

No faust in here: the agent hands over the raw messages of one partition and the state of
that partition, and sends what comes back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from schemas.deadletter import DeadLetter
from schemas.events import Alert, SitePowerPartial
from schemas.packed import is_packed
from schemas.registry import CONTRACTS
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame
from schemas.validation import Limits, Rejection
from streams import deadletter
from streams.agents.asic_columns import asic_sums
from streams.agents.gpu_columns import gpu_sums
from streams.agents.messages import LateIn, QualityIn, SiteInput, Stage1State
from streams.agents.sites import SiteEntry
from streams.decisions.alerts import AlertState, QualityFinding, alerts_step
from streams.decisions.power import AsicSums, GpuSums, fold_partials, readings_of

Frame = MeterFrame | GpuFrame | AsicFrame | GpuSums | AsicSums


@dataclass(frozen=True, slots=True)
class RawMessage:
    """What stage 1 needs of a Kafka message (independent of the client library)."""

    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Stage1Output:
    partials: list[SitePowerPartial] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    site_inputs: list[tuple[str, SiteInput]] = field(default_factory=list)
    """(site id, input) for the stage-2 agent of that site."""
    alerts: list[Alert] = field(default_factory=list)
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    readings: int = 0
    duplicate_frames: int = 0


def process_partition(
    state: Stage1State,
    messages: Sequence[RawMessage],
    sites: Mapping[str, SiteEntry],
    *,
    base_topic: str,
    topic: str,
    partition: int,
    limits: Limits,
    lateness_s: int,
    consumer: str,
) -> tuple[Stage1State, Stage1Output]:
    """Fold one batch of one partition (``topic`` is the full name, for dead letters)."""
    out = Stage1Output()
    if messages:
        state.next_offset = messages[-1].offset + 1
    contract = CONTRACTS[base_topic]
    frames: list[Frame] = []
    summed = _packed_hot_path(messages, limits, contract.type)
    for i, m in enumerate(messages):
        decoded: Frame | Rejection
        decoded = summed[i] if i in summed else contract.decode(m.value, limits)
        if not isinstance(decoded, Rejection) and decoded.site_id not in sites:
            decoded = Rejection(
                "unknown_site", f"site_id {decoded.site_id!r} has no config on site.config.v1"
            )
        if isinstance(decoded, Rejection):
            out.rejected[decoded.kind] += 1
            out.letters.append(
                deadletter.envelope(
                    topic=topic,
                    partition=partition,
                    offset=m.offset,
                    key=m.key,
                    value=m.value,
                    rejection=decoded,
                    consumer=consumer,
                    now_s=limits.now_s,
                )
            )
            continue
        out.accepted += 1
        out.readings += readings_of(decoded)
        frames.append(decoded)
    if not frames:
        return state, out
    source = f"{base_topic}:{partition}"
    indexes = {site_id: e.index for site_id, e in sites.items()}
    state.partial, folded = fold_partials(
        state.partial, frames, indexes, source_partition=source, lateness_s=lateness_s
    )
    out.partials = folded.partials
    out.duplicate_frames = folded.duplicate_frames
    late_by_site: dict[str, LateIn] = {}
    for late in folded.late:
        late_by_site.setdefault(late.site_id, LateIn(items=[])).items.append(late)
    out.site_inputs.extend(late_by_site.items())
    asic = [f for f in frames if isinstance(f, AsicFrame | AsicSums)]
    if asic:
        _asic_checks(state, asic, sites, source, out)
    return state, out


def _packed_hot_path(
    messages: Sequence[RawMessage], limits: Limits, kind: type
) -> dict[int, Frame]:
    """Index in ``messages`` -> summed frame, for the packed GPU or ASIC frames of the batch
    that pass the contract (all of them, or none: then each is decoded and judged alone)."""
    summing = _SUMMING.get(kind)
    if summing is None:
        return {}
    at = [
        i
        for i, m in enumerate(messages)
        if m.value is not None and is_packed(m.value) and len(m.value) <= limits.max_frame_bytes
    ]
    if not at:
        return {}
    sums = summing([messages[i].value for i in at], limits)  # type: ignore[misc]
    return dict(zip(at, sums, strict=True)) if sums is not None else {}


_SUMMING: dict[type, Callable[[list[bytes], Limits], Sequence[Frame] | None]] = {
    GpuFrame: gpu_sums,
    AsicFrame: asic_sums,
}


def _asic_checks(
    state: Stage1State,
    frames: list[AsicFrame | AsicSums],
    sites: Mapping[str, SiteEntry],
    source: str,
    out: Stage1Output,
) -> None:
    """Miner alerts (a miner is always scraped through the same partition) and models the
    site config does not know (their power cannot be estimated)."""
    by_site: dict[str, list[AsicFrame | AsicSums]] = {}
    for f in frames:
        by_site.setdefault(f.site_id, []).append(f)
    for site_id, site_frames in by_site.items():
        entry = sites[site_id]
        known = entry.index.j_per_th
        unknown: Counter[str] = Counter()
        for f in site_frames:
            if isinstance(f, AsicSums):
                if f.model not in known:
                    unknown[f.model] += f.readings
            elif not known.keys() >= set(f.model):
                unknown.update(m for m in f.model if m not in known)
        if unknown:
            ts = max(f.ts_s for f in site_frames)
            findings = [
                QualityFinding(
                    site_id=site_id,
                    subject=f"unknown_model:{model}",
                    ts_s=ts,
                    ok=False,
                    message=f"{n} readings of ASIC model {model!r}, not in the site config "
                    f"(no power estimate), from {source}",
                    context={"model": model, "readings": n, "source_partition": source},
                )
                for model, n in sorted(unknown.items())
            ]
            out.site_inputs.append((site_id, QualityIn(findings=findings)))
        alert_state = state.alerts.get(site_id) or AlertState(site_id=site_id)
        alert_state, alerts = alerts_step(
            alert_state,
            entry.config,
            now_s=max(f.ts_s for f in site_frames),
            asic_frames=site_frames,
        )
        state.alerts[site_id] = alert_state
        out.alerts.extend(alerts)
