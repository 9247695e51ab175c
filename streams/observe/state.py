"""What operators look at, as a bounded in-memory view folded from the output topics.

Pure: no Kafka, no clock. ``fold(state, topic, message, now_s)`` applies one decoded
message; ``note_received`` counts arrivals for throughput; ``set_lag`` records consumer
lag measured by the feed. The terminal view and the web dashboard read the state through
``snapshot`` (JSON-able) or directly.

The view follows ONE site: the one asked for, or else the first site seen. Messages of
other sites are counted in ``other_sites`` and otherwise ignored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from schemas.base import Message
from schemas.deadletter import DeadLetter
from schemas.events import Alert, CurtailmentEvent, MinerCommand, SitePower, SurplusEvent
from schemas.grid import CarbonIntensity, PriceSignal
from schemas.site import SiteConfig
from streams.decisions.breakeven import breakeven_usd_per_mwh
from streams.observe.ring import KeyedWindow, RateMeter, TimeRing

OBSERVED_TOPICS: tuple[str, ...] = (
    "site.config.v1",
    "site.power.v1",
    "surplus.events.v1",
    "curtailment.events.v1",
    "miners.commands.v1",
    "alerts.v1",
    "grid.prices.v1",
    "grid.carbon.v1",
    "deadletter.v1",
)
"""Base names of the topics the observer reads (outputs of the pipeline plus the grid
signals it is judged against)."""

POWER_COLUMNS = (
    "ai_w",
    "mining_w",
    "overhead_w",
    "total_w",
    "contract_w",
    "surplus_w",
    "poi_meter_w",
    "hashrate_ths",
    "latency_s",
)
PRICE_KINDS = ("rt", "sced")
"""Real-time prices: the 15-minute settlement price, or the 5-minute SCED price."""


@dataclass(frozen=True)
class Limits:
    """How much the view keeps. Every container in ``ObserveState`` is bounded by these."""

    power_s: int = 900
    """Seconds of 1-second site power (15 minutes: one settlement interval)."""
    price_intervals: int = 96
    carbon_hours: int = 48
    alerts: int = 50
    """Recent alert transitions (firing and resolved) shown."""
    firing_alerts: int = 200
    curtailment_history: int = 50
    surplus_history: int = 20
    rate_window_s: int = 10
    other_sites: int = 32
    deadletter_keys: int = 64


@dataclass
class ObserveState:
    site_id: str | None = None
    """Site followed; None until the first site-scoped message picks one."""
    hashprice_override: float | None = None
    """USD/PH/day; None: the site policy's hashprice (what the curtailment controller uses)."""
    limits: Limits = field(default_factory=Limits)

    site: SiteConfig | None = None
    power: TimeRing = field(init=False)
    latest_power: SitePower | None = None
    surplus: SurplusEvent | None = None
    surplus_history: deque[SurplusEvent] = field(init=False)
    active_curtailments: dict[str, CurtailmentEvent] = field(default_factory=dict)
    curtailment_history: deque[CurtailmentEvent] = field(init=False)
    """Ended events, newest last (for the timeline)."""
    commands: int = 0
    last_command: MinerCommand | None = None
    firing: dict[str, Alert] = field(default_factory=dict)
    alerts: deque[Alert] = field(init=False)
    price_point: str | None = None
    prices: KeyedWindow = field(init=False)
    """Interval start (s) -> real-time price (USD/MWh) at the site's settlement point."""
    carbon: KeyedWindow = field(init=False)
    """Hour start (s) -> average grid intensity (gCO2eq/kWh)."""
    marginal_carbon: KeyedWindow = field(init=False)
    deadletters: dict[str, int] = field(default_factory=dict)
    """Dead-lettered messages by source topic."""
    rates: dict[str, RateMeter] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    """Consumer lag of this observer, messages per topic."""
    lag_at_s: float | None = None
    undecodable: dict[str, int] = field(default_factory=dict)
    other_sites: dict[str, int] = field(default_factory=dict)
    last_message_s: float | None = None

    def __post_init__(self) -> None:
        lim = self.limits
        self.power = TimeRing(POWER_COLUMNS, max_rows=lim.power_s, span_s=lim.power_s)
        self.surplus_history = deque(maxlen=lim.surplus_history)
        self.curtailment_history = deque(maxlen=lim.curtailment_history)
        self.alerts = deque(maxlen=lim.alerts)
        self.prices = KeyedWindow(lim.price_intervals)
        self.carbon = KeyedWindow(lim.carbon_hours)
        self.marginal_carbon = KeyedWindow(lim.carbon_hours)


def _bump(counts: dict[str, int], key: str, cap: int, n: int = 1) -> None:
    """Count ``key``; past ``cap`` distinct keys the rest go under ``(other)``."""
    if key not in counts and len(counts) >= cap:
        key = "(other)"
    counts[key] = counts.get(key, 0) + n


def _follows(state: ObserveState, site_id: str) -> bool:
    """True when messages of ``site_id`` belong in the view (adopting it if none yet)."""
    if state.site_id is None:
        state.site_id = site_id
    if site_id == state.site_id:
        return True
    _bump(state.other_sites, site_id, state.limits.other_sites)
    return False


def note_received(state: ObserveState, topic: str, n: int, now_s: float) -> None:
    """Count ``n`` messages that arrived on ``topic`` (decoded or not) at wall time ``now_s``."""
    meter = state.rates.get(topic)
    if meter is None:
        meter = state.rates[topic] = RateMeter(state.limits.rate_window_s)
    meter.add(now_s, n)
    state.last_message_s = now_s


def note_undecodable(state: ObserveState, topic: str) -> None:
    _bump(state.undecodable, topic, state.limits.deadletter_keys)


def set_lag(state: ObserveState, lag_by_topic: dict[str, int], now_s: float) -> None:
    state.lag = dict(lag_by_topic)
    state.lag_at_s = now_s


def fold(state: ObserveState, topic: str, msg: Message, now_s: float) -> None:
    """Apply one decoded message of base topic ``topic``. Unknown types are ignored."""
    if isinstance(msg, SitePower):
        if _follows(state, msg.site_id):
            _fold_power(state, msg, now_s)
    elif isinstance(msg, SiteConfig):
        if _follows(state, msg.site_id):
            _fold_site(state, msg)
    elif isinstance(msg, SurplusEvent):
        if _follows(state, msg.site_id):
            state.surplus = msg
            state.surplus_history.append(msg)
    elif isinstance(msg, CurtailmentEvent):
        if _follows(state, msg.site_id):
            _fold_curtailment(state, msg)
    elif isinstance(msg, MinerCommand):
        if _follows(state, msg.site_id):
            state.commands += 1
            state.last_command = msg
    elif isinstance(msg, Alert):
        if _follows(state, msg.site_id):
            _fold_alert(state, msg)
    elif isinstance(msg, PriceSignal):
        _fold_price(state, msg)
    elif isinstance(msg, CarbonIntensity):
        _fold_carbon(state, msg)
    elif isinstance(msg, DeadLetter):
        _bump(state.deadletters, msg.source_topic, state.limits.deadletter_keys)


def _fold_power(state: ObserveState, p: SitePower, now_s: float) -> None:
    latency = p.emitted_s - p.ts_s
    row = (
        p.ai_w,
        p.mining_w,
        p.overhead_w,
        p.total_w,
        p.contract_w,
        p.surplus_w,
        p.poi_meter_w,
        p.hashrate_ths,
        latency,
    )
    if state.power.append(float(p.ts_s), row):
        state.latest_power = p


def _fold_site(state: ObserveState, site: SiteConfig) -> None:
    if state.price_point not in (None, site.settlement_point):
        # Prices adopted before the config said which point is the site's: start over.
        state.prices = KeyedWindow(state.limits.price_intervals)
    state.price_point = site.settlement_point
    state.site = site


def _fold_curtailment(state: ObserveState, ev: CurtailmentEvent) -> None:
    if ev.kind == "ended":
        state.active_curtailments.pop(ev.event_id, None)
        state.curtailment_history.append(ev)
        return
    state.active_curtailments[ev.event_id] = ev
    # A lost "ended" must not leave the table growing: keep only the newest events.
    while len(state.active_curtailments) > state.limits.curtailment_history:
        oldest = min(state.active_curtailments.values(), key=lambda e: e.ts_s)
        del state.active_curtailments[oldest.event_id]


def _fold_alert(state: ObserveState, a: Alert) -> None:
    state.alerts.append(a)
    if a.state == "resolved":
        state.firing.pop(a.alert_id, None)
        return
    state.firing[a.alert_id] = a
    while len(state.firing) > state.limits.firing_alerts:
        oldest = min(state.firing.values(), key=lambda x: x.started_at_s)
        del state.firing[oldest.alert_id]


def _fold_price(state: ObserveState, p: PriceSignal) -> None:
    if p.kind not in PRICE_KINDS:
        return
    want = state.site.settlement_point if state.site is not None else state.price_point
    if want is None:
        want = p.settlement_point
    if p.settlement_point != want:
        return
    state.price_point = want
    state.prices.put(p.interval_start_s, p.price_usd_per_mwh)


def _fold_carbon(state: ObserveState, c: CarbonIntensity) -> None:
    if state.site is not None and c.region != state.site.market:
        return
    target = state.carbon if c.kind == "average" else state.marginal_carbon
    target.put(c.hour_start_s, c.intensity_g_per_kwh)


# --- derived figures -------------------------------------------------------------------


def hashprice(state: ObserveState) -> float | None:
    if state.hashprice_override is not None:
        return state.hashprice_override
    return state.site.policy.hashprice_usd_per_ph_day if state.site is not None else None


def model_breakevens(state: ObserveState) -> dict[str, float]:
    """Breakeven USD/MWh by ASIC model: hashprice / (0.024 x J/TH)."""
    hp = hashprice(state)
    if hp is None or state.site is None:
        return {}
    return {m.model: float(breakeven_usd_per_mwh(hp, m.j_per_th)) for m in state.site.asic_models}


def fleet_breakeven(state: ObserveState) -> float | None:
    """Breakeven of the whole fleet: its hashrate-weighted efficiency (total W / total TH/s)."""
    hp = hashprice(state)
    if hp is None or state.site is None:
        return None
    ths = sum(m.count * m.hashrate_ths for m in state.site.asic_models)
    if ths <= 0:
        return None
    watts = sum(m.count * m.hashrate_ths * m.j_per_th for m in state.site.asic_models)
    return float(breakeven_usd_per_mwh(hp, watts / ths))


def interconnection_limit_w(state: ObserveState) -> float | None:
    return state.site.interconnection_limit_mw * 1e6 if state.site is not None else None


def current_price(state: ObserveState) -> tuple[float, float] | None:
    """(interval start, USD/MWh) of the newest priced interval."""
    return state.prices.latest()


def current_carbon(state: ObserveState) -> tuple[float, float] | None:
    return state.carbon.latest()


def carbon_rate_kg_per_h(state: ObserveState) -> float | None:
    """Location-based emissions rate now: total MW x 1000 kWh/MWh x g/kWh / 1000 g/kg."""
    if state.latest_power is None:
        return None
    intensity = state.carbon.at(float(state.latest_power.ts_s))
    if intensity is None:
        return None
    return state.latest_power.total_w / 1e6 * intensity


def throughput(state: ObserveState, now_s: float) -> dict[str, float]:
    return {topic: meter.rate(now_s) for topic, meter in sorted(state.rates.items())}


def curtailment_elapsed_s(ev: CurtailmentEvent, now_s: float) -> float:
    """Response time once achieved; until then, time since issue (still counting)."""
    if ev.response_time_s is not None:
        return ev.response_time_s
    return max(0.0, now_s - ev.issued_at_s)


def snapshot(state: ObserveState, now_s: float) -> dict[str, Any]:
    """Everything the dashboard draws, as JSON-able data (times in UTC epoch seconds)."""
    site = state.site
    latest = state.latest_power
    price = current_price(state)
    carbon = current_carbon(state)
    events = [*state.curtailment_history, *state.active_curtailments.values()]
    return {
        "now_s": now_s,
        "site_id": state.site_id,
        "site_name": site.name if site is not None else None,
        "settlement_point": state.price_point,
        "interconnection_limit_w": interconnection_limit_w(state),
        "power": state.power.column_arrays(),
        "latest_power": _power_dict(latest),
        "surplus": _surplus_dict(state.surplus),
        "curtailments": {
            "active": [_curtailment_dict(e, now_s) for e in state.active_curtailments.values()],
            "timeline": [_timeline_dict(e) for e in events],
        },
        "commands": state.commands,
        "alerts": {
            "firing": [_alert_dict(a) for a in state.firing.values()],
            "recent": [_alert_dict(a) for a in reversed(state.alerts)],
        },
        "prices": {
            "intervals": [{"start_s": k, "usd_per_mwh": v} for k, v in state.prices.items()],
            "latest": {"start_s": price[0], "usd_per_mwh": price[1]} if price else None,
            "hashprice_usd_per_ph_day": hashprice(state),
            "fleet_breakeven_usd_per_mwh": fleet_breakeven(state),
            "model_breakevens_usd_per_mwh": model_breakevens(state),
        },
        "carbon": {
            "hours": [{"start_s": k, "g_per_kwh": v} for k, v in state.carbon.items()],
            "latest": {"start_s": carbon[0], "g_per_kwh": carbon[1]} if carbon else None,
            "rate_kg_per_h": carbon_rate_kg_per_h(state),
        },
        "throughput": throughput(state, now_s),
        "lag": dict(sorted(state.lag.items())),
        "lag_at_s": state.lag_at_s,
        "deadletters": dict(state.deadletters),
        "undecodable": dict(state.undecodable),
        "other_sites": dict(state.other_sites),
        "late_power_rows": state.power.late,
        "last_message_s": state.last_message_s,
    }


def _power_dict(p: SitePower | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "ts_s": p.ts_s,
        "ai_w": p.ai_w,
        "mining_w": p.mining_w,
        "overhead_w": p.overhead_w,
        "total_w": p.total_w,
        "contract_w": p.contract_w,
        "surplus_w": p.surplus_w,
        "poi_meter_w": p.poi_meter_w,
        "hashrate_ths": p.hashrate_ths,
        "latency_s": p.emitted_s - p.ts_s,
        "flags": list(p.flags),
    }


def _surplus_dict(s: SurplusEvent | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "event_id": s.event_id,
        "kind": s.kind,
        "start_s": s.start_s,
        "end_s": s.end_s,
        "surplus_w": s.surplus_w,
        "absorbed_w": s.absorbed_w,
        "unabsorbed_w": s.unabsorbed_w,
        "energy_wh": s.energy_wh,
    }


def _curtailment_dict(e: CurtailmentEvent, now_s: float) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "kind": e.kind,
        "reasons": list(e.reasons),
        "reason_details": list(e.reason_details),
        "issued_at_s": e.issued_at_s,
        "target_mining_w": e.target_mining_w,
        "baseline_mining_w": e.baseline_mining_w,
        "deadline_s": e.deadline_s,
        "achieved_at_s": e.achieved_at_s,
        "response_time_s": e.response_time_s,
        "elapsed_s": curtailment_elapsed_s(e, now_s),
        "deadline_met": e.deadline_met,
        "curtailed_wh": e.curtailed_wh,
    }


def _timeline_dict(e: CurtailmentEvent) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "reasons": list(e.reasons),
        "issued_at_s": e.issued_at_s,
        "achieved_at_s": e.achieved_at_s,
        "ended_at_s": e.ended_at_s,
    }


def _alert_dict(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "condition": a.condition,
        "subject": a.subject,
        "severity": a.severity,
        "state": a.state,
        "started_at_s": a.started_at_s,
        "ended_at_s": a.ended_at_s,
        "message": a.message,
    }
