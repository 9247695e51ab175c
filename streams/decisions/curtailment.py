"""The curtailment controller of one site: triggers with hysteresis -> one merged event.

Triggers, each giving a ceiling on mining power and a deadline:

- ``economic``: a model is curtailed once the last ``policy.economic_confirm_intervals``
  published prices are all above its breakeven + restart premium + margin, and resumes once
  the latest is below breakeven - margin (in between it keeps its state: hysteresis). Price
  exactly at breakeven never curtails. Breakeven follows the hashprice in force, net of the
  pool fee, less the site's cost adder (``economics``). Prices are SCED 5-minute LMPs where
  a SCED feed is fresh, else 15-minute SPPs; each is used only once the controller's clock
  has reached its publication time (``publication.published_at``). A price or hashprice
  feed older than its ``policy`` max age is stale: the trigger holds its state (no new
  curtailment, no release) rather than guess, and ``feed_stale`` alerts fire. Ceiling:
  nameplate of the models still running, never below the load reserved for ancillary
  awards in force (a Load Resource delivers only what it consumes: Nodal Protocols 3.18,
  8.1.1.2.1).
- ``grid``: an active ``DispatchSignal`` for the site (or system-wide; ``test`` dispatches
  included, as ERCOT tests are answered like real ones), ceiling
  ``reduce_to_mw`` (0 when None), deadline ``start_s + response_deadline_s``; EEA notices
  from ``eea_min_level``; frequency below ``policy.under_frequency_hz`` curtails all at once
  and clears only after ``frequency_recover_s`` at or above the threshold + margin.
- ``4cp``: from ``peak_lead_s`` before a 4CP risk window to its end, ceiling the reserved
  load (0 without awards), deadline the window start. The windows come from the site's
  forecast (``four_cp_risk_windows``), else the fixed ``policy.peak_windows``
  (``peak_risk.four_cp_windows``).
- ``site_limit``: AI + overhead + mining above the interconnection limit - headroom (the
  forward contract is a position, not a ceiling: energy above it is bought at the
  real-time price, which the economic trigger weighs against each breakeven); ceiling =
  limit - AI - overhead; clears when AI + overhead + the event's baseline fit
  under the limit less ``policy.site_limit_release_fraction`` of it, and not before
  ``policy.site_limit_min_dwell_s`` (hysteresis and dwell: steady load, steady commands).
  Grid deployments and the site limit may shed reserved load: deploying it is the award.

All active triggers share ONE event (ceiling = the lowest, reasons = all that ever joined).
Miners are put to sleep least efficient model first (``Fleet`` order). When every trigger
has cleared, the ceiling is raised by ``policy.restore_step_mw`` every
``policy.restore_step_s`` (first step at once) until the whole fleet runs; then the event
ends.

Time is event time: the controller's clock is the newest timestamp among its inputs
(``SitePower.ts_s``, ``FrequencySample.ts_s``, ``Hashprice.ts_s``, ``Tick.ts_s``); a
price, a hashprice signal, a ``DispatchSignal`` or an award does not move it: prices and
hashprices wait until the clock reaches their publication. The agent sends a ``Tick``
every second so that deadlines and restore steps happen without data. Every event carries
the inputs behind it (prices with publication times, hashprice, breakevens, reserved MW,
trigger states): the decision audit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

from schemas.events import CurtailmentEvent, CurtailmentReason, MinerCommand, SitePower
from schemas.grid import DispatchSignal, FrequencySample, HashpriceSignal, PriceSignal
from schemas.market_positions import AncillaryAward
from schemas.site import SiteConfig
from streams.decisions.breakeven import Hashprice
from streams.decisions.economics import Breakevens, fleet_breakevens
from streams.decisions.fleet import Fleet
from streams.decisions.peak_risk import four_cp_windows
from streams.decisions.publication import published_at


class Tick(msgspec.Struct, kw_only=True, frozen=True):
    """Wall-clock tick: lets deadlines and restore steps happen when no data arrives."""

    ts_s: float


ControllerInput = (
    PriceSignal
    | DispatchSignal
    | FrequencySample
    | SitePower
    | Hashprice
    | HashpriceSignal
    | AncillaryAward
    | Tick
)

AWARD_HOUR_S = 3600.0


class KnownPrice(msgspec.Struct, kw_only=True, frozen=True):
    """A price of the site's settlement point, with the time it was published."""

    kind: str
    interval_start_s: float
    price_usd_per_mwh: float
    published_s: float


class ControllerConfig(msgspec.Struct, kw_only=True, frozen=True):
    achieve_tolerance_w: float = 100_000.0
    achieve_tolerance_fraction: float = 0.02
    """Target reached when mining <= target + max(tolerance_w, fraction x baseline)."""
    under_frequency_deadline_s: float = 1.0
    """ERCOT under-frequency relays trip in about 0.5 s; SitePower resolution is 1 s."""
    frequency_recover_hz: float = 0.05
    frequency_recover_s: float = 10.0
    peak_lead_s: float = 300.0
    eea_min_level: int = 1
    site_limit_release_margin_w: float = 0.0
    price_kinds: tuple[str, ...] = ("rt", "sced")
    price_kinds_preferred: tuple[str, ...] = ("sced", "rt")
    """Decision price series in order of preference: the 5-minute SCED LMP while fresh,
    else the 15-minute SPP (ERCOT's own average of SCED LMPs, known after its interval)."""
    tunable_firmware: tuple[str, ...] = ("braiins", "luxos", "vnish")
    """Firmware that takes a power target (``set_power``); stock firmware only sleeps."""
    min_power_fraction: float = 0.5


class Trigger(msgspec.Struct, kw_only=True, frozen=True):
    reason: CurtailmentReason
    details: list[str]
    """Stable descriptions (no live values), so that an event's list stays short."""
    target_w: float
    deadline_s: float


class ActiveEvent(msgspec.Struct, kw_only=True):
    event_id: str
    issued_at_s: float
    baseline_mining_w: float
    reasons: list[CurtailmentReason]
    reason_details: list[str]
    target_mining_w: float
    target_set_s: float
    deadline_s: float
    achieved_at_s: float | None = None
    response_time_s: float | None = None
    deadline_met: bool | None = None
    missed_any_deadline: bool = False
    curtailed_wh: float = 0.0
    last_accounted_s: int | None = None
    releasing: bool = False
    next_restore_s: float = 0.0
    commands: int = 0


class Audit(msgspec.Struct, kw_only=True):
    """The inputs behind a decision (``CurtailmentEvent``'s audit fields)."""

    price_kind: str | None = None
    price_usd_per_mwh: float | None = None
    price_interval_start_s: float | None = None
    price_published_s: float | None = None
    confirm_prices_usd_per_mwh: list[float] = []
    confirm_published_s: list[float] = []
    hashprice_usd_per_ph_day: float | None = None
    hashprice_net_usd_per_ph_day: float | None = None
    hashprice_published_s: float | None = None
    hashprice_source: str | None = None
    breakeven_models: list[str] = []
    breakeven_usd_per_mwh: list[float] = []
    reserved_mw: float = 0.0
    reserved_awards: list[str] = []
    trigger_states: list[str] = []
    site_load_w: float | None = None
    site_limit_w: float | None = None


class ControllerState(msgspec.Struct, kw_only=True):
    site_id: str
    clock_s: float = 0.0
    hashprice_usd_per_ph_day: float | None = None
    """Gross hashprice in force; None: ``policy.hashprice_usd_per_ph_day``."""
    hashprice_published_s: float | None = None
    """Publication time of the feed value in force (None: override or policy constant)."""
    hashprice_source: str | None = None
    pending_hashprices: list[HashpriceSignal] = []
    """Feed values not yet published at the controller's clock."""
    prices: dict[str, KnownPrice] = {}
    """``<kind>:<interval start>`` -> latest published price of the site's settlement
    point (the newest few of each kind)."""
    pending_prices: list[KnownPrice] = []
    """Prices received before their publication time (a feed that sends early)."""
    price_stale: bool = False
    hashprice_stale: bool = False
    awards: list[AncillaryAward] = []
    """Ancillary awards of the site not yet over."""
    site_limit_since_s: float | None = None
    audit: Audit = msgspec.field(default_factory=Audit)
    """Inputs at the latest decision, carried by every event message."""
    economic_models: list[str] = []
    """Models curtailed for economics (kept between prices: hysteresis)."""
    dispatches: dict[str, DispatchSignal] = {}
    uf_since_s: float | None = None
    uf_recover_since_s: float | None = None
    last_power: SitePower | None = None
    site_limit_active: bool = False
    asleep: dict[str, int] = {}
    """Model -> miners commanded asleep (``miner_ids[:n]``)."""
    power_limits: dict[str, float] = {}
    """Model -> per-miner power limit commanded to its awake miners (absent: nameplate)."""
    event: ActiveEvent | None = None


class ControllerOutput(msgspec.Struct, kw_only=True):
    commands: list[MinerCommand]
    events: list[CurtailmentEvent]


def _input_time(x: ControllerInput) -> float | None:
    if isinstance(x, PriceSignal | HashpriceSignal | DispatchSignal | AncillaryAward):
        # A price becomes known at its publication time, when the clock reaches it (from
        # telemetry or ticks), never earlier: a feed that sends early cannot pull it ahead.
        return None
    return float(x.ts_s)


def controller_step(
    state: ControllerState,
    inputs: Iterable[ControllerInput],
    site: SiteConfig,
    fleet: Fleet,
    config: ControllerConfig | None = None,
) -> tuple[ControllerState, ControllerOutput]:
    """Feed a batch of inputs (in arrival order) to the controller of ``site``."""
    cfg = config or ControllerConfig()
    if state.site_id != site.site_id or fleet.site_id != site.site_id:
        raise ValueError(
            f"controller_step: state {state.site_id!r}, fleet {fleet.site_id!r} and site "
            f"{site.site_id!r} must be the same site"
        )
    out = ControllerOutput(commands=[], events=[])
    for x in inputs:
        t = _input_time(x)
        if t is not None and t > state.clock_s:
            state.clock_s = t
        if isinstance(x, PriceSignal):
            _on_price(state, x, site, cfg)
        elif isinstance(x, DispatchSignal):
            if x.site_id is None or x.site_id == site.site_id:
                state.dispatches[x.event_id] = x
        elif isinstance(x, FrequencySample):
            _on_frequency(state, x, site, cfg)
        elif isinstance(x, Hashprice):
            state.hashprice_usd_per_ph_day = x.usd_per_ph_day
            state.hashprice_published_s = None
            state.hashprice_source = "override"
        elif isinstance(x, HashpriceSignal):
            state.pending_hashprices.append(x)
        elif isinstance(x, AncillaryAward):
            if x.site_id == site.site_id and x not in state.awards:
                state.awards.append(x)
        elif isinstance(x, SitePower):
            if x.site_id != site.site_id:
                raise ValueError(
                    f"controller_step: SitePower of site {x.site_id!r} fed to {site.site_id!r}"
                )
            _on_power(state, x, site, fleet, cfg, out)
        _publish_due(state, site, cfg)
        _check_deadline(state, out)
        _decide(state, site, fleet, cfg, out)
    return state, out


# --------------------------------------------------------------------------- inputs


def _on_price(
    state: ControllerState, x: PriceSignal, site: SiteConfig, cfg: ControllerConfig
) -> None:
    if x.settlement_point != site.settlement_point or x.kind not in cfg.price_kinds:
        return
    state.pending_prices.append(
        KnownPrice(
            kind=x.kind,
            interval_start_s=x.interval_start_s,
            price_usd_per_mwh=x.price_usd_per_mwh,
            published_s=published_at(x),
        )
    )


def _publish_due(state: ControllerState, site: SiteConfig, cfg: ControllerConfig) -> None:
    """Move prices and hashprices whose publication time the clock has reached into use."""
    now = state.clock_s
    if state.pending_prices:
        due = [p for p in state.pending_prices if p.published_s <= now]
        state.pending_prices = [p for p in state.pending_prices if p.published_s > now]
        for p in sorted(due, key=lambda p: (p.published_s, p.interval_start_s)):
            state.prices[f"{p.kind}:{p.interval_start_s:.0f}"] = p
        keep = max(site.policy.economic_confirm_intervals, 1) + 2
        for kind in {p.kind for p in due}:
            mine = sorted(
                (k for k, v in state.prices.items() if v.kind == kind),
                key=lambda k: state.prices[k].interval_start_s,
            )
            for k in mine[:-keep]:
                del state.prices[k]
    if state.pending_hashprices:
        due_h = [h for h in state.pending_hashprices if h.published_s <= now]
        state.pending_hashprices = [h for h in state.pending_hashprices if h.published_s > now]
        for h in sorted(due_h, key=lambda h: h.published_s):
            if state.hashprice_published_s is None or h.published_s >= state.hashprice_published_s:
                state.hashprice_usd_per_ph_day = h.usd_per_ph_day
                state.hashprice_published_s = h.published_s
                state.hashprice_source = h.source
    state.awards = [a for a in state.awards if a.hour_start_s + AWARD_HOUR_S > now]


def decision_prices(
    state: ControllerState, site: SiteConfig, cfg: ControllerConfig
) -> list[KnownPrice]:
    """The price series the economic trigger reads, oldest first: SCED where a SCED price
    is known and fresh, else the 15-minute SPP (published after its interval)."""
    by_kind: dict[str, list[KnownPrice]] = {}
    for p in state.prices.values():
        by_kind.setdefault(p.kind, []).append(p)
    fallback: list[KnownPrice] = []
    for kind in cfg.price_kinds_preferred:
        series = sorted(by_kind.get(kind, []), key=lambda p: p.interval_start_s)
        if not series:
            continue
        if state.clock_s - series[-1].published_s <= site.policy.price_max_age_s:
            return series
        fallback = fallback or series
    return fallback  # every series stale: the preferred one, which the trigger then holds on


def reserved_w(state: ControllerState, now: float) -> tuple[float, list[str]]:
    """Load reserved for ancillary awards in force at ``now`` and the awards behind it."""
    mw = 0.0
    names: list[str] = []
    for a in state.awards:
        if a.hour_start_s <= now < a.hour_start_s + AWARD_HOUR_S and a.mw > 0:
            mw += a.mw
            names.append(f"{a.service}/{a.market}/{a.hour_start_s:.0f}/{a.mw:g}")
    return mw * 1e6, names


def _on_frequency(
    state: ControllerState, x: FrequencySample, site: SiteConfig, cfg: ControllerConfig
) -> None:
    threshold = site.policy.under_frequency_hz
    if x.freq_hz < threshold:
        if state.uf_since_s is None:
            state.uf_since_s = x.ts_s
        state.uf_recover_since_s = None
    elif state.uf_since_s is not None:
        if x.freq_hz >= threshold + cfg.frequency_recover_hz:
            if state.uf_recover_since_s is None:
                state.uf_recover_since_s = x.ts_s
            if x.ts_s - state.uf_recover_since_s >= cfg.frequency_recover_s:
                state.uf_since_s = state.uf_recover_since_s = None
        else:
            state.uf_recover_since_s = None


def _tolerance_w(ev: ActiveEvent, cfg: ControllerConfig) -> float:
    return max(cfg.achieve_tolerance_w, cfg.achieve_tolerance_fraction * ev.baseline_mining_w)


def _on_power(
    state: ControllerState,
    x: SitePower,
    site: SiteConfig,
    fleet: Fleet,
    cfg: ControllerConfig,
    out: ControllerOutput,
) -> None:
    state.last_power = x
    limit = _site_limit_w(site)
    load = x.ai_w + x.overhead_w + x.mining_w
    ev = state.event
    policy = site.policy
    if load > limit:
        if not state.site_limit_active:
            state.site_limit_since_s = float(x.ts_s)
        state.site_limit_active = True
    elif state.site_limit_active:
        reference = ev.baseline_mining_w if ev is not None else x.mining_w
        release_at = (
            limit * (1.0 - policy.site_limit_release_fraction) - cfg.site_limit_release_margin_w
        )
        since = state.site_limit_since_s if state.site_limit_since_s is not None else x.ts_s
        dwelt = x.ts_s - since >= policy.site_limit_min_dwell_s
        if dwelt and x.ai_w + x.overhead_w + reference <= release_at:
            state.site_limit_active = False
            state.site_limit_since_s = None
    if ev is None or x.ts_s < math.floor(ev.issued_at_s):
        return
    if ev.last_accounted_s is None or x.ts_s > ev.last_accounted_s:
        # Energy not drawn against the baseline, one second per SitePower.
        ev.curtailed_wh += max(0.0, ev.baseline_mining_w - x.mining_w) / 3600.0
        ev.last_accounted_s = x.ts_s
    if (
        ev.achieved_at_s is None
        and not ev.releasing
        and x.ts_s >= math.floor(ev.target_set_s)
        and _read_after(x, ev.target_set_s)
        and x.mining_w <= ev.target_mining_w + _tolerance_w(ev, cfg)
    ):
        ev.achieved_at_s = float(x.ts_s)
        ev.response_time_s = max(0.0, x.ts_s - ev.target_set_s)
        ev.deadline_met = x.ts_s <= ev.deadline_s and not ev.missed_any_deadline
        out.events.append(_event_msg(state, ev, "achieved", state.clock_s))


def _read_after(x: SitePower, command_s: float) -> bool:
    """Whether every reading behind ``x.mining_w`` was taken after the command: a source
    polled every 5 or 60 s holds its reading from before it (docs/cadence.md), and that
    says nothing of compliance. Unknown (older messages): the second's own time decides."""
    return x.mining_reading_s is None or x.mining_reading_s >= command_s


def _check_deadline(state: ControllerState, out: ControllerOutput) -> None:
    ev = state.event
    if ev is None or ev.releasing or ev.achieved_at_s is not None or ev.deadline_met is False:
        return
    if state.clock_s > ev.deadline_s:
        ev.deadline_met = False
        ev.missed_any_deadline = True
        out.events.append(_event_msg(state, ev, "updated", state.clock_s))


# --------------------------------------------------------------------------- triggers


def _site_limit_w(site: SiteConfig) -> float:
    """The physical limit only: the forward contract is a position, not a ceiling. Energy
    above it is bought at the real-time price, and whether a miner should draw it is the
    economic trigger's question (price against each model's breakeven), not this one's."""
    return site.interconnection_limit_mw * 1e6 - site.policy.site_limit_headroom_mw * 1e6


def _breakevens(state: ControllerState, site: SiteConfig, fleet: Fleet) -> Breakevens:
    hashprice = state.hashprice_usd_per_ph_day
    if hashprice is None:
        hashprice = site.policy.hashprice_usd_per_ph_day
    return fleet_breakevens(hashprice, site.policy, fleet)


def _economic(
    state: ControllerState, site: SiteConfig, fleet: Fleet, cfg: ControllerConfig
) -> Trigger | None:
    policy = site.policy
    be = _breakevens(state, site, fleet)
    series = decision_prices(state, site, cfg)
    n = max(policy.economic_confirm_intervals, 1)
    recent = [p.price_usd_per_mwh for p in series[-n:]]
    state.price_stale = bool(series) and (
        state.clock_s - series[-1].published_s > policy.price_max_age_s
    )
    state.hashprice_stale = state.hashprice_published_s is not None and (
        state.clock_s - state.hashprice_published_s > policy.hashprice_max_age_s
    )
    curtailed = set(state.economic_models)
    margin = policy.price_margin_usd_per_mwh
    if not (state.price_stale or state.hashprice_stale):
        for m in fleet.models:
            if m.model in curtailed:
                if recent and recent[-1] < be.resume_below[m.model] - margin:
                    curtailed.discard(m.model)
            elif len(recent) == n and all(p > be.curtail_above[m.model] + margin for p in recent):
                curtailed.add(m.model)
    # else: hold what is curtailed, start nothing new, release nothing (no guessing).
    details = [
        f"economic:{m.model} above breakeven {be.resume_below[m.model]:.2f} USD/MWh"
        for m in fleet.models
        if m.model in curtailed
    ]
    state.economic_models = [m.model for m in fleet.models if m.model in curtailed]
    if not curtailed:
        return None
    running = sum(m.total_w for m in fleet.models if m.model not in curtailed)
    reserved, _ = reserved_w(state, state.clock_s)
    return Trigger(
        reason="economic",
        details=details,
        target_w=max(running, min(reserved, fleet.total_w)),
        deadline_s=state.clock_s + policy.response_deadline_s,
    )


def _triggers(
    state: ControllerState, site: SiteConfig, fleet: Fleet, cfg: ControllerConfig
) -> list[Trigger]:
    now = state.clock_s
    policy = site.policy
    found: list[Trigger] = []
    econ = _economic(state, site, fleet, cfg)
    if econ is not None:
        found.append(econ)
    for d in list(state.dispatches.values()):
        if d.end_s is not None and d.end_s <= now:
            del state.dispatches[d.event_id]
            continue
        if d.start_s > now or (d.kind == "eea" and (d.level or 0) < cfg.eea_min_level):
            continue
        target = d.reduce_to_mw * 1e6 if d.reduce_to_mw is not None else 0.0
        level = f" level {d.level}" if d.level is not None else ""
        found.append(
            Trigger(
                reason="grid",
                details=[f"grid:{d.kind}{level} {d.event_id}"],
                target_w=target,
                deadline_s=d.start_s + d.response_deadline_s,
            )
        )
    if state.uf_since_s is not None:
        found.append(
            Trigger(
                reason="grid",
                details=[f"grid:under_frequency < {policy.under_frequency_hz} Hz"],
                target_w=0.0,
                deadline_s=state.uf_since_s + cfg.under_frequency_deadline_s,
            )
        )
    for w in four_cp_windows(site):
        if w.start_s - cfg.peak_lead_s <= now < w.end_s:
            deadline = w.start_s if now < w.start_s else now + policy.response_deadline_s
            reserved, _ = reserved_w(state, now)
            found.append(
                Trigger(
                    reason="4cp",
                    details=[f"4cp:window {w.start_s:.0f}-{w.end_s:.0f}"],
                    target_w=min(reserved, fleet.total_w),
                    deadline_s=deadline,
                )
            )
    p = state.last_power
    if state.site_limit_active and p is not None:
        limit = _site_limit_w(site)
        found.append(
            Trigger(
                reason="site_limit",
                details=[f"site_limit:above {limit / 1e6:.3f} MW"],
                target_w=max(0.0, limit - p.ai_w - p.overhead_w),
                deadline_s=now + policy.response_deadline_s,
            )
        )
    return found


# --------------------------------------------------------------------------- decisions


def _decide(
    state: ControllerState,
    site: SiteConfig,
    fleet: Fleet,
    cfg: ControllerConfig,
    out: ControllerOutput,
) -> None:
    now = state.clock_s
    triggers = _triggers(state, site, fleet, cfg)
    state.audit = _audit(state, site, fleet, cfg, triggers)
    ev = state.event
    if triggers:
        target = min(t.target_w for t in triggers)
        binding = min(t.deadline_s for t in triggers if t.target_w <= target)
        if ev is None:
            baseline = state.last_power.mining_w if state.last_power is not None else fleet.total_w
            ev = state.event = ActiveEvent(
                event_id=f"{site.site_id}/curtailment/{now:.0f}",
                issued_at_s=now,
                baseline_mining_w=baseline,
                reasons=[],
                reason_details=[],
                target_mining_w=target,
                target_set_s=now,
                deadline_s=binding,
            )
            kind = "issued"
        else:
            kind = ""
            if ev.releasing:
                ev.releasing = False
                kind = "updated"
            if target < ev.target_mining_w - _tolerance_w(ev, cfg):
                # Deeper target: a new deadline, and achievement is measured again.
                ev.target_set_s = now
                ev.deadline_s = binding
                ev.achieved_at_s = ev.response_time_s = ev.deadline_met = None
                kind = "updated"
            if abs(target - ev.target_mining_w) > _tolerance_w(ev, cfg):
                kind = kind or "updated"
            ev.target_mining_w = target
        for t in triggers:
            if t.reason not in ev.reasons:
                ev.reasons.append(t.reason)
                kind = kind or "updated"
            for detail in t.details:
                if detail not in ev.reason_details:
                    ev.reason_details.append(detail)
        if kind:
            out.events.append(_event_msg(state, ev, kind, now))
        _command(state, fleet, ev, target, now, out, cfg)
        return
    if ev is None:
        return
    step_w = site.policy.restore_step_mw * 1e6
    if not ev.releasing:
        ev.releasing = True
        ev.next_restore_s = now
        out.events.append(_event_msg(state, ev, "released", now))
    while now >= ev.next_restore_s:
        ev.target_mining_w = min(ev.target_mining_w + step_w, fleet.total_w)
        step_at = ev.next_restore_s
        ev.next_restore_s += site.policy.restore_step_s
        _command(state, fleet, ev, ev.target_mining_w, step_at, out, cfg)
        if ev.target_mining_w >= fleet.total_w:
            out.events.append(_event_msg(state, ev, "ended", now, ended=True))
            state.event = None
            return


class ModelPlan(msgspec.Struct, kw_only=True, frozen=True):
    asleep: int
    """Miners of the model asleep (``miner_ids[:asleep]``)."""
    power_limit_w: float | None = None
    """Per-miner power limit of the awake miners; None: nameplate."""


def plan_fleet(
    fleet: Fleet,
    target_w: float,
    *,
    tunable_firmware: tuple[str, ...] = (),
    min_power_fraction: float = 0.5,
) -> dict[str, ModelPlan]:
    """Per model, what to put to sleep (or power-limit) so that nameplate mining <= target.

    Most efficient models stay on first; once a model is only partly on, every less
    efficient model sleeps entirely (strict least-efficient-first order). The one model
    that is partly on is power-limited instead of partly put to sleep when its firmware
    can take a power target (``tunable_firmware``) and the per-miner limit is at least
    ``min_power_fraction`` of nameplate (underclocked miners hash at better J/TH).
    """
    budget = target_w
    plan: dict[str, ModelPlan] = {}
    full = True
    for m in reversed(fleet.models):
        n = len(m.miner_ids)
        if not full:
            plan[m.model] = ModelPlan(asleep=n)
            continue
        if m.power_w <= 0:
            plan[m.model] = ModelPlan(asleep=0)
            continue
        awake = min(n, math.floor(budget / m.power_w + 1e-9))
        full = awake == n
        if not full and m.firmware in tunable_firmware:
            per_miner = budget / n
            if per_miner >= min_power_fraction * m.power_w:
                plan[m.model] = ModelPlan(asleep=0, power_limit_w=per_miner)
                budget = 0.0
                continue
        budget -= awake * m.power_w
        plan[m.model] = ModelPlan(asleep=n - awake)
    return plan


def plan_asleep(fleet: Fleet, target_w: float) -> dict[str, int]:
    """Sleep-only plan: miners of each model asleep so that nameplate mining <= target."""
    return {k: v.asleep for k, v in plan_fleet(fleet, target_w).items()}


_Cmd = tuple[str, list[str], float, float | None]
"""action, miner ids, deadline, power limit."""


def _command(
    state: ControllerState,
    fleet: Fleet,
    ev: ActiveEvent,
    target_w: float,
    now: float,
    out: ControllerOutput,
    cfg: ControllerConfig,
) -> None:
    plan = plan_fleet(
        fleet,
        target_w,
        tunable_firmware=cfg.tunable_firmware,
        min_power_fraction=cfg.min_power_fraction,
    )
    sleeps: list[_Cmd] = []
    limits: list[_Cmd] = []
    wakes: list[_Cmd] = []
    for m in fleet.models:  # least efficient first
        old = state.asleep.get(m.model, 0)
        p = plan[m.model]
        if p.asleep > old:
            sleeps.append(("sleep", m.miner_ids[old : p.asleep], ev.deadline_s, None))
        elif p.asleep < old:
            wakes.append(("wake", m.miner_ids[p.asleep : old], now + m.ramp_up_s, None))
        old_limit = state.power_limits.get(m.model)
        if p.power_limit_w != old_limit and p.asleep < len(m.miner_ids):
            # None -> back to nameplate: say so explicitly, firmware keeps the last limit.
            limit = p.power_limit_w if p.power_limit_w is not None else m.power_w
            deadline = ev.deadline_s if limit < (old_limit or m.power_w) else now + m.ramp_up_s
            limits.append(("set_power", m.miner_ids[p.asleep :], deadline, limit))
        state.asleep[m.model] = p.asleep
        if p.asleep == len(m.miner_ids):
            pass  # all asleep: keep the limit they hold, so that waking them resets it
        elif p.power_limit_w is None:
            state.power_limits.pop(m.model, None)
        else:
            state.power_limits[m.model] = p.power_limit_w
    wakes.reverse()  # wake the most efficient first
    for priority, (action, ids, deadline, limit_w) in enumerate(sleeps + limits + wakes):
        ev.commands += 1
        out.commands.append(
            MinerCommand(
                command_id=f"{ev.event_id}/{ev.commands}",
                site_id=fleet.site_id,
                event_id=ev.event_id,
                issued_at_s=now,
                action=action,  # type: ignore[arg-type]
                miner_ids=ids,
                power_limit_w=limit_w,
                priority=priority,
                deadline_s=deadline,
            )
        )


def _audit(
    state: ControllerState,
    site: SiteConfig,
    fleet: Fleet,
    cfg: ControllerConfig,
    triggers: list[Trigger],
) -> Audit:
    """What the controller knows at its clock: the inputs every event message carries."""
    series = decision_prices(state, site, cfg)
    n = max(site.policy.economic_confirm_intervals, 1)
    confirm = series[-n:]
    latest = series[-1] if series else None
    be = _breakevens(state, site, fleet)
    reserved, awards = reserved_w(state, state.clock_s)
    on = {t.reason for t in triggers}
    states = [f"{r}:{'on' if r in on else 'off'}" for r in ("economic", "grid", "4cp")]
    states.append(f"site_limit:{'on' if 'site_limit' in on else 'off'}")
    states.append(
        "price_feed:" + ("none" if latest is None else "stale" if state.price_stale else "ok")
    )
    hp_feed = "stale" if state.hashprice_stale else "ok"
    if state.hashprice_published_s is None:
        hp_feed = state.hashprice_source or "policy"
    states.append(f"hashprice_feed:{hp_feed}")
    p = state.last_power
    return Audit(
        price_kind=None if latest is None else latest.kind,
        price_usd_per_mwh=None if latest is None else latest.price_usd_per_mwh,
        price_interval_start_s=None if latest is None else latest.interval_start_s,
        price_published_s=None if latest is None else latest.published_s,
        confirm_prices_usd_per_mwh=[c.price_usd_per_mwh for c in confirm],
        confirm_published_s=[c.published_s for c in confirm],
        hashprice_usd_per_ph_day=be.gross_usd_per_ph_day,
        hashprice_net_usd_per_ph_day=be.net_usd_per_ph_day,
        hashprice_published_s=state.hashprice_published_s,
        hashprice_source=state.hashprice_source or "policy",
        breakeven_models=[m.model for m in fleet.models],
        breakeven_usd_per_mwh=[round(be.resume_below[m.model], 4) for m in fleet.models],
        reserved_mw=reserved / 1e6,
        reserved_awards=awards,
        trigger_states=states,
        site_load_w=None if p is None else p.ai_w + p.overhead_w + p.mining_w,
        site_limit_w=None if p is None else _site_limit_w(site),
    )


def _event_msg(
    state: ControllerState, ev: ActiveEvent, kind: str, now: float, *, ended: bool = False
) -> CurtailmentEvent:
    a = state.audit
    return CurtailmentEvent(
        event_id=ev.event_id,
        site_id=state.site_id,
        kind=kind,  # type: ignore[arg-type]
        reasons=list(ev.reasons),
        reason_details=list(ev.reason_details),
        issued_at_s=ev.issued_at_s,
        target_mining_w=ev.target_mining_w,
        baseline_mining_w=ev.baseline_mining_w,
        deadline_s=ev.deadline_s,
        achieved_at_s=ev.achieved_at_s,
        response_time_s=ev.response_time_s,
        deadline_met=ev.deadline_met,
        curtailed_wh=ev.curtailed_wh,
        ended_at_s=now if ended else None,
        ts_s=now,
        price_kind=a.price_kind,
        price_usd_per_mwh=a.price_usd_per_mwh,
        price_interval_start_s=a.price_interval_start_s,
        price_published_s=a.price_published_s,
        confirm_prices_usd_per_mwh=list(a.confirm_prices_usd_per_mwh),
        confirm_published_s=list(a.confirm_published_s),
        hashprice_usd_per_ph_day=a.hashprice_usd_per_ph_day,
        hashprice_net_usd_per_ph_day=a.hashprice_net_usd_per_ph_day,
        hashprice_published_s=a.hashprice_published_s,
        hashprice_source=a.hashprice_source,
        breakeven_models=list(a.breakeven_models),
        breakeven_usd_per_mwh=list(a.breakeven_usd_per_mwh),
        reserved_mw=a.reserved_mw,
        reserved_awards=list(a.reserved_awards),
        trigger_states=list(a.trigger_states),
        site_load_w=a.site_load_w,
        site_limit_w=a.site_limit_w,
    )
