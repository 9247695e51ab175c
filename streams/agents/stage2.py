"""Stage 2, one site at a time: partials -> SitePower -> surplus, curtailment, alerts.

No faust in here: the agent hands over the inputs of one site in arrival order and its four
decision states, and sends what comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from schemas.events import (
    Alert,
    CurtailmentEvent,
    MinerCommand,
    SitePower,
    SitePowerPartial,
    SurplusEvent,
)
from schemas.restatement import SitePowerRestatement
from streams.agents.messages import (
    AwardIn,
    DispatchIn,
    FrequencyIn,
    HashpriceFeedIn,
    HashpriceIn,
    LateIn,
    PriceIn,
    QualityIn,
    SiteInput,
    TickIn,
)
from streams.agents.sites import SiteEntry
from streams.decisions.alerts import AlertState, FeedStatus, QualityFinding, alerts_step
from streams.decisions.breakeven import Hashprice
from streams.decisions.curtailment import (
    ControllerInput,
    ControllerState,
    Tick,
    controller_step,
)
from streams.decisions.power import (
    CombineConfig,
    CombineState,
    Gap,
    LateReadings,
    Reconciliation,
    combine,
)
from streams.decisions.restate import SiteRestater
from streams.decisions.surplus import SurplusState, surplus_step

log = logging.getLogger(__name__)

TickMode = Literal["wall", "event", "off"]


@dataclass
class SiteStates:
    """The four decision states of one site (each kept in its own faust table)."""

    combine: CombineState
    surplus: SurplusState
    controller: ControllerState
    alerts: AlertState

    @classmethod
    def fresh(cls, site_id: str) -> SiteStates:
        return cls(
            combine=CombineState(),
            surplus=SurplusState(site_id=site_id),
            controller=ControllerState(site_id=site_id),
            alerts=AlertState(site_id=site_id),
        )


@dataclass
class Stage2Output:
    powers: list[SitePower] = field(default_factory=list)
    surplus: list[SurplusEvent] = field(default_factory=list)
    commands: list[MinerCommand] = field(default_factory=list)
    curtailments: list[CurtailmentEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    restatements: list[SitePowerRestatement] = field(default_factory=list)
    unrestated_readings: int = 0
    """Late readings too old for the restater's memory (counted, as alerts say)."""


@dataclass
class TickClock:
    """Event-time ticks: the controller clock moved on by the wall time since it last moved.

    Kept in memory only: after a restart the first tick waits for data to set the clock.
    """

    clock_s: float = 0.0
    wall_s: float = 0.0


@dataclass(frozen=True)
class Stage2Config:
    combine: CombineConfig = field(default_factory=CombineConfig)
    tick: TickMode = "wall"
    hashprice_usd_per_ph_day: float | None = None
    """Overrides the site policy's hashprice when set."""


Stage2Item = SitePowerPartial | SiteInput


def process_site(
    states: SiteStates,
    items: Sequence[Stage2Item],
    site: SiteEntry,
    *,
    now_s: float,
    config: Stage2Config,
    clock: TickClock | None = None,
    restater: SiteRestater | None = None,
) -> tuple[SiteStates, Stage2Output]:
    """Feed one site's inputs (arrival order) through combine, surplus, controller, alerts.

    ``now_s`` is the wall clock (``SitePower.emitted_s``). Controller inputs keep their
    arrival order, with each run of partials replaced by the seconds it closed. With a
    ``restater``, late readings restate the closed seconds they change (only the marts
    see restatements: decisions already taken stand).
    """
    out = Stage2Output()
    cfg = site.config
    ctrl = states.controller
    inputs: list[ControllerInput] = []
    if (
        config.hashprice_usd_per_ph_day is not None
        and ctrl.hashprice_usd_per_ph_day != config.hashprice_usd_per_ph_day
    ):
        inputs.append(Hashprice(ts_s=ctrl.clock_s, usd_per_ph_day=config.hashprice_usd_per_ph_day))
    gaps: list[Gap] = []
    late: list[LateReadings] = []
    recs: list[Reconciliation] = []
    quality: list[QualityFinding] = []
    pending: list[SitePowerPartial] = []
    late_partials: list[SitePowerPartial] = []
    if restater is not None:
        seen = states.combine.sites.get(cfg.site_id)
        restater.begin(fresh=seen is None or not (seen.emitted_any or seen.open or seen.held))

    def flush() -> None:
        states.combine, combined = combine(
            states.combine, pending, {cfg.site_id: site.index}, now_s=now_s, config=config.combine
        )
        sc = states.combine.sites.get(cfg.site_id)
        if restater is not None and sc is not None:
            late_ids = {id(p) for p in combined.late_partials}
            restater.observe(p for p in pending if id(p) not in late_ids)
            restater.closed(combined.powers, sc.next_s)
            late_partials.extend(combined.late_partials)
        pending.clear()
        out.powers.extend(combined.powers)
        inputs.extend(combined.powers)
        gaps.extend(combined.gaps)
        late.extend(combined.late)
        recs.extend(combined.reconciliations)

    for item in items:
        if isinstance(item, SitePowerPartial):
            if item.late_key is not None:
                late_partials.append(item)  # late in stage 1: restated, and held onward
            pending.append(item)
            continue
        if pending:
            flush()
        if isinstance(
            item, PriceIn | DispatchIn | FrequencyIn | HashpriceIn | HashpriceFeedIn | AwardIn
        ):
            inputs.append(item.signal)
        elif isinstance(item, TickIn):
            tick = _tick(item, ctrl, config.tick, clock)
            if tick is not None:
                inputs.append(tick)
        elif isinstance(item, LateIn):
            late.extend(item.items)
        elif isinstance(item, QualityIn):
            quality.extend(item.findings)
    flush()
    if restater is not None and late_partials:
        restated = restater.restate(late_partials, now_s)
        out.restatements = restated.restatements
        out.unrestated_readings = restated.unrestated_readings

    fresh = _in_order(states.surplus, out.powers)
    states.surplus, out.surplus = surplus_step(states.surplus, fresh)
    if inputs:
        states.controller, decided = controller_step(ctrl, inputs, cfg, site.fleet)
        out.commands = decided.commands
        out.curtailments = decided.events
    if clock is not None and states.controller.clock_s > clock.clock_s:
        clock.clock_s, clock.wall_s = states.controller.clock_s, now_s
    if out.powers or out.curtailments or gaps or late or recs or quality or inputs:
        ctrl_now = states.controller
        feeds = [
            FeedStatus(feed="price", stale=ctrl_now.price_stale, ts_s=ctrl_now.clock_s),
            FeedStatus(feed="hashprice", stale=ctrl_now.hashprice_stale, ts_s=ctrl_now.clock_s),
        ]
        states.alerts, out.alerts = alerts_step(
            states.alerts,
            cfg,
            now_s=states.controller.clock_s,
            powers=out.powers,
            reconciliations=recs,
            curtailments=out.curtailments,
            gaps=gaps,
            late=late,
            quality=quality,
            feeds=feeds,
        )
    return states, out


def _tick(
    item: TickIn, ctrl: ControllerState, mode: TickMode, clock: TickClock | None
) -> Tick | None:
    if mode == "wall":
        return Tick(ts_s=item.wall_s)
    if mode == "event" and clock is not None and clock.wall_s > 0:
        return Tick(ts_s=clock.clock_s + max(0.0, item.wall_s - clock.wall_s))
    return None


def _in_order(state: SurplusState, powers: list[SitePower]) -> list[SitePower]:
    """Seconds the surplus detector has not seen (after a restore from an older changelog
    entry, combine may emit a second the detector already counted)."""
    last = state.last_ts_s
    if last is None:
        return powers
    fresh = [p for p in powers if p.ts_s > last]
    if len(fresh) < len(powers):
        log.warning(
            "surplus: skipped %d seconds of site %s at or before %d (already counted)",
            len(powers) - len(fresh),
            state.site_id,
            last,
        )
    return fresh
