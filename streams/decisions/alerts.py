"""Deduplicated alerts of one site: one alert per condition and subject.

An alert is sent once when it fires and once when it resolves; while it fires, repeated
evidence sends nothing. Its id is ``<site>/<condition>/<subject>/<started_at>`` (see
``schemas.events.Alert``), so a consumer can dedupe redeliveries by id and state.

Conditions and what fires / resolves them:

============================ ======================================= =====================
condition                    fires                                   resolves
============================ ======================================= =====================
meter_silent                 meter missing ``meter_silent_s`` s      meter reports again
device_meter_mismatch        outside tolerance ``mismatch_confirm_s`` ``mismatch_clear_s``
                             consecutive reconciled seconds          seconds within it
curtailment_late             deadline passed, target not reached     reached, or ended
curtailment_failed           ``curtailment_fail_after_s`` past the   reached, or ended
                             deadline, target still not reached
site_over_limit              POI (else total) above interconnection  first second below
                             limit (critical) / contract (info)
                             ``over_limit_confirm_s``
miner_over_temperature       a reading above ``max_temp_c``          reading <= clear_c
miner_underhashing           ``underhash_confirm`` scrapes hashing   a scrape at or above
                             below ``underhash_fraction`` x nominal  the fraction
data_quality                 ``QualityFinding(ok=False)``; a gap of  ``ok=True``; the next
                             ``gap_alert_s`` s or more (subject      SitePower after the
                             ``power_gap``)                          gap
late_data                    any ``LateReadings``                    ``late_quiet_s`` quiet
feed_stale                   the controller's price or hashprice     a fresh value
                             is older than the policy's max age      (subject ``price`` /
                             (economic decisions held meanwhile)     ``hashprice``)
============================ ======================================= =====================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from schemas.events import Alert, CurtailmentEvent, SitePower
from schemas.site import SiteConfig
from schemas.telemetry import AsicFrame
from streams.decisions.power import (
    METER_MISSING_PREFIX,
    AsicSums,
    Gap,
    LateReadings,
    Reconciliation,
)

Condition = Literal[
    "meter_silent",
    "device_meter_mismatch",
    "curtailment_late",
    "curtailment_failed",
    "site_over_limit",
    "miner_over_temperature",
    "miner_underhashing",
    "data_quality",
    "late_data",
    "feed_stale",
]
Severity = Literal["info", "warning", "critical"]
Context = dict[str, str | float | int | None]


class AlertConfig(msgspec.Struct, kw_only=True, frozen=True):
    meter_silent_s: int = 5
    mismatch_confirm_s: int = 30
    mismatch_clear_s: int = 30
    curtailment_fail_after_s: float = 120.0
    over_limit_confirm_s: int = 3
    max_temp_c: float = 85.0
    temp_clear_c: float = 80.0
    underhash_fraction: float = 0.8
    underhash_confirm: int = 3
    late_quiet_s: float = 60.0
    gap_alert_s: int = 5


class QualityFinding(msgspec.Struct, kw_only=True, frozen=True):
    """A data-quality verdict from a validator or a Great Expectations gate."""

    site_id: str
    subject: str
    """What was checked, e.g. ``telemetry.gpu.v1`` or ``mart:interval_energy``."""
    ts_s: float
    ok: bool
    message: str
    severity: Severity = "warning"
    context: Context = {}


class FeedStatus(msgspec.Struct, kw_only=True, frozen=True):
    """Whether a market feed the controller decides on is stale at ``ts_s``."""

    feed: Literal["price", "hashprice"]
    stale: bool
    ts_s: float


class Firing(msgspec.Struct, kw_only=True):
    alert_id: str
    condition: Condition
    subject: str
    severity: Severity
    started_at_s: float
    message: str
    context: Context = {}


class AlertState(msgspec.Struct, kw_only=True):
    site_id: str
    firing: dict[str, Firing] = {}
    """``condition/subject`` -> the alert now firing."""
    bad_since: dict[str, float] = {}
    bad_count: dict[str, int] = {}
    good_count: dict[str, int] = {}
    curtailments: dict[str, CurtailmentEvent] = {}
    """Latest message of each curtailment not yet ended."""
    last_late_s: float | None = None
    late_readings: int = 0


class _Ctx:
    """What one step needs everywhere: state, output list, site."""

    def __init__(self, state: AlertState, site: SiteConfig, cfg: AlertConfig) -> None:
        self.state = state
        self.site = site
        self.cfg = cfg
        self.out: list[Alert] = []

    def fire(
        self,
        condition: Condition,
        subject: str,
        severity: Severity,
        started_at_s: float,
        message: str,
        context: Context | None = None,
    ) -> None:
        key = f"{condition}/{subject}"
        if key in self.state.firing:
            return
        f = Firing(
            alert_id=f"{self.state.site_id}/{condition}/{subject}/{started_at_s:.0f}",
            condition=condition,
            subject=subject,
            severity=severity,
            started_at_s=started_at_s,
            message=message,
            context=dict(context or {}),
        )
        self.state.firing[key] = f
        self.out.append(self._alert(f, "firing", None, message))

    def resolve(self, condition: Condition, subject: str, at_s: float, message: str) -> None:
        f = self.state.firing.pop(f"{condition}/{subject}", None)
        if f is not None:
            self.out.append(self._alert(f, "resolved", at_s, message))

    def _alert(self, f: Firing, state: str, ended: float | None, message: str) -> Alert:
        return Alert(
            alert_id=f.alert_id,
            site_id=self.state.site_id,
            condition=f.condition,
            subject=f.subject,
            severity=f.severity,
            state=state,  # type: ignore[arg-type]
            started_at_s=f.started_at_s,
            ended_at_s=ended,
            message=message,
            context=f.context,
        )

    def observe(self, key: str, bad: bool, ts_s: float, fire_after: int, clear_after: int) -> str:
        """Count consecutive bad/good observations of ``key`` (``condition/subject``).

        Returns "fire", "resolve" or "".
        """
        s = self.state
        if bad:
            s.good_count.pop(key, None)
            if key not in s.bad_since:
                s.bad_since[key] = ts_s
            s.bad_count[key] = s.bad_count.get(key, 0) + 1
            return "fire" if s.bad_count[key] >= fire_after else ""
        s.bad_since.pop(key, None)
        s.bad_count.pop(key, None)
        if key not in s.firing:
            return ""
        s.good_count[key] = s.good_count.get(key, 0) + 1
        if s.good_count[key] >= clear_after:
            del s.good_count[key]
            return "resolve"
        return ""


def alerts_step(
    state: AlertState,
    site: SiteConfig,
    *,
    now_s: float,
    powers: Iterable[SitePower] = (),
    reconciliations: Iterable[Reconciliation] = (),
    curtailments: Iterable[CurtailmentEvent] = (),
    asic_frames: Iterable[AsicFrame | AsicSums] = (),
    gaps: Iterable[Gap] = (),
    late: Iterable[LateReadings] = (),
    quality: Iterable[QualityFinding] = (),
    feeds: Iterable[FeedStatus] = (),
    config: AlertConfig | None = None,
) -> tuple[AlertState, list[Alert]]:
    """Turn one batch of findings of ``site`` into alerts that fired or resolved.

    ``now_s`` (wall clock or event time, consistently) drives the time-based conditions:
    failed curtailments and the quiet period of late data.
    """
    if state.site_id != site.site_id:
        raise ValueError(f"alerts_step: state of {state.site_id!r} fed site {site.site_id!r}")
    c = _Ctx(state, site, config or AlertConfig())
    for g in gaps:
        if g.end_s - g.start_s >= c.cfg.gap_alert_s:
            c.fire(
                "data_quality",
                "power_gap",
                "warning",
                g.start_s,
                f"no readings at all for {g.end_s - g.start_s} s from {g.start_s}",
                {"start_s": g.start_s, "end_s": g.end_s},
            )
    for p in powers:
        _on_power(c, p)
    for r in reconciliations:
        _on_reconciliation(c, r)
    for e in curtailments:
        if e.kind == "ended":
            state.curtailments.pop(e.event_id, None)
            for cond in ("curtailment_late", "curtailment_failed"):
                c.resolve(cond, e.event_id, e.ts_s, "curtailment ended")
        else:
            state.curtailments[e.event_id] = e
    _check_curtailments(c, now_s)
    for f in asic_frames:
        _on_asic(c, f)
    _on_late(c, late, now_s)
    for feed in feeds:
        if feed.stale:
            c.fire(
                "feed_stale",
                feed.feed,
                "warning",
                feed.ts_s,
                f"{feed.feed} feed older than its max age: economic curtailment holds its state",
            )
        else:
            c.resolve("feed_stale", feed.feed, feed.ts_s, f"{feed.feed} feed fresh again")
    for q in quality:
        if q.ok:
            c.resolve("data_quality", q.subject, q.ts_s, q.message)
        else:
            c.fire("data_quality", q.subject, q.severity, q.ts_s, q.message, q.context)
    return state, c.out


def _on_power(c: _Ctx, p: SitePower) -> None:
    c.resolve("data_quality", "power_gap", p.ts_s, f"readings again from {p.ts_s}")
    flags = set(p.flags)
    poi_ids = {m.meter_id for m in c.site.meters if m.role == "poi"}
    for m in c.site.meters:
        key = f"meter_silent/{m.meter_id}"
        verdict = c.observe(
            key, METER_MISSING_PREFIX + m.meter_id in flags, p.ts_s, c.cfg.meter_silent_s, 1
        )
        if verdict == "fire":
            since = c.state.bad_since[key]
            c.fire(
                "meter_silent",
                m.meter_id,
                "critical" if m.meter_id in poi_ids else "warning",
                since,
                f"meter {m.meter_id} ({m.role}) silent since {since:.0f}",
                {"role": m.role},
            )
        elif verdict == "resolve":
            c.resolve("meter_silent", m.meter_id, p.ts_s, f"meter {m.meter_id} reports again")
    total = p.poi_meter_w if p.poi_meter_w is not None else p.total_w
    limits = [("interconnection", c.site.interconnection_limit_mw * 1e6, "critical")]
    if p.contract_w > 0:
        # Above contract the site buys at real-time prices: an economic choice the controller
        # makes while the marginal miner earns more than the price, not a limit broken.
        limits.append(("contract", p.contract_w, "info"))
    for subject, limit_w, severity in limits:
        key = f"site_over_limit/{subject}"
        verdict = c.observe(key, total > limit_w, p.ts_s, c.cfg.over_limit_confirm_s, 1)
        if verdict == "fire":
            c.fire(
                "site_over_limit",
                subject,
                severity,  # type: ignore[arg-type]
                c.state.bad_since[key],
                f"site draws {total / 1e6:.3f} MW over its {subject} limit {limit_w / 1e6:.3f} MW",
                {"total_w": total, "limit_w": limit_w},
            )
        elif verdict == "resolve":
            c.resolve("site_over_limit", subject, p.ts_s, f"site back under its {subject} limit")


def _on_reconciliation(c: _Ctx, r: Reconciliation) -> None:
    key = f"device_meter_mismatch/{r.use}"
    verdict = c.observe(
        key, not r.within_tolerance, r.ts_s, c.cfg.mismatch_confirm_s, c.cfg.mismatch_clear_s
    )
    if verdict == "fire":
        c.fire(
            "device_meter_mismatch",
            r.use,
            "warning",
            c.state.bad_since[key],
            f"{r.use} devices sum to {r.device_w / 1e6:.3f} MW, meter reads "
            f"{r.meter_w / 1e6:.3f} MW ({r.difference_fraction:.1%} apart, tolerance "
            f"{c.site.meter_tolerance_fraction:.1%})",
            {
                "meter_w": r.meter_w,
                "device_w": r.device_w,
                "estimated_w": r.estimated_w,
                "difference_fraction": r.difference_fraction,
            },
        )
    elif verdict == "resolve":
        c.resolve("device_meter_mismatch", r.use, r.ts_s, f"{r.use} devices agree with meter")


def _check_curtailments(c: _Ctx, now_s: float) -> None:
    for e in list(c.state.curtailments.values()):
        if e.achieved_at_s is not None:
            for cond in ("curtailment_late", "curtailment_failed"):
                c.resolve(cond, e.event_id, e.achieved_at_s, "target reached")
            continue
        if e.kind == "released":
            continue  # triggers cleared before the target was reached: nothing to chase
        context: Context = {
            "target_mining_w": e.target_mining_w,
            "baseline_mining_w": e.baseline_mining_w,
            "deadline_s": e.deadline_s,
            "reasons": ",".join(e.reasons),
        }
        if e.deadline_met is False or now_s > e.deadline_s:
            c.fire(
                "curtailment_late",
                e.event_id,
                "warning",
                e.deadline_s,
                f"curtailment {e.event_id} missed its deadline {e.deadline_s:.0f}",
                context,
            )
        if now_s > e.deadline_s + c.cfg.curtailment_fail_after_s:
            c.fire(
                "curtailment_failed",
                e.event_id,
                "critical",
                e.deadline_s + c.cfg.curtailment_fail_after_s,
                f"curtailment {e.event_id} has not reached {e.target_mining_w / 1e6:.3f} MW "
                f"{now_s - e.deadline_s:.0f} s after its deadline",
                context,
            )


_UNDERHASH = "miner_underhashing/"
_OVER_TEMP = "miner_over_temperature/"


def _nominal(c: _Ctx) -> dict[str, float]:
    """Model -> the hashrate under which a miner is underhashing, TH/s."""
    return {m.model: m.hashrate_ths * c.cfg.underhash_fraction for m in c.site.asic_models}


def _all_hashing_well(c: _Ctx, f: AsicFrame, nominal: dict[str, float]) -> bool:
    """The common case, checked at C speed: one known model per frame, every miner at or
    above its floor, and no underhash count or alert to carry on or resolve."""
    models = set(f.model)
    if len(models) != 1 or not f.hashrate_ths:
        return False
    floor = nominal.get(models.pop())
    if floor is None or min(f.hashrate_ths) < floor:
        return False
    state = c.state
    return not any(k.startswith(_UNDERHASH) for k in state.bad_count) and not any(
        k.startswith(_UNDERHASH) for k in state.firing
    )


def _quiet(c: _Ctx, f: AsicSums, nominal: dict[str, float]) -> bool:
    """Whether ``_on_asic`` would find nothing to do in a summed frame: no miner over the
    temperature limit, no hashing miner under its model's floor (a model with no floor is
    never checked), and no miner of the frame with a miner alert counting or firing."""
    if f.max_temp_c is not None and f.max_temp_c > c.cfg.max_temp_c:
        return False
    floor = nominal.get(f.model)
    if floor is not None and f.min_hashing_ths < floor:
        return False
    state = c.state
    if not state.firing and not state.bad_count:
        return True
    keyed = {
        k.split("/", 1)[1]
        for k in (*state.firing, *state.bad_count)
        if k.startswith((_UNDERHASH, _OVER_TEMP))
    }
    return keyed.isdisjoint(f.miner_ids)


def _on_asic(c: _Ctx, f: AsicFrame | AsicSums) -> None:
    cfg = c.cfg
    if isinstance(f, AsicSums):
        if _quiet(c, f, _nominal(c)):
            return
        f = f.full()  # a miner to alert on or an alert to carry on: look at each miner
    firing = c.state.firing
    temps = [t for t in f.temp_c if t is not None]
    hot_possible = bool(temps) and max(temps) > cfg.max_temp_c
    if hot_possible or any(k.startswith(_OVER_TEMP) for k in firing):
        for miner, t in zip(f.miner_id, f.temp_c, strict=True):
            if t is None:
                continue
            if t > cfg.max_temp_c:
                c.fire(
                    "miner_over_temperature",
                    miner,
                    "warning",
                    f.ts_s,
                    f"miner {miner} at {t:.1f} C (limit {cfg.max_temp_c:.1f} C)",
                    {"temp_c": t},
                )
            elif t <= cfg.temp_clear_c:
                c.resolve("miner_over_temperature", miner, f.ts_s, f"miner {miner} at {t:.1f} C")
    nominal = _nominal(c)
    if _all_hashing_well(c, f, nominal):
        return
    for miner, model, h, st in zip(f.miner_id, f.model, f.hashrate_ths, f.state, strict=True):
        floor = nominal.get(model)
        if floor is None or st != "hashing":
            continue
        key = f"miner_underhashing/{miner}"
        if h >= floor and key not in c.state.bad_count and key not in firing:
            continue  # the common case: healthy and nothing to reset
        verdict = c.observe(key, h < floor, f.ts_s, cfg.underhash_confirm, 1)
        if verdict == "fire":
            c.fire(
                "miner_underhashing",
                miner,
                "info",
                c.state.bad_since[key],
                f"miner {miner} ({model}) hashing {h:.1f} TH/s, below "
                f"{cfg.underhash_fraction:.0%} of nominal",
                {"hashrate_ths": h, "model": model},
            )
        elif verdict == "resolve":
            c.resolve("miner_underhashing", miner, f.ts_s, f"miner {miner} back to {h:.1f} TH/s")


def _on_late(c: _Ctx, late: Iterable[LateReadings], now_s: float) -> None:
    s = c.state
    batch = list(late)
    n = sum(x.readings for x in batch)
    if n:
        s.last_late_s = now_s
        s.late_readings += n
        first = min(x.ts_s for x in batch)
        c.fire(
            "late_data",
            "readings",
            "warning",
            now_s,
            f"{n} readings arrived after their second closed (oldest second {first})",
            {"readings": n, "oldest_ts_s": first},
        )
    elif s.last_late_s is not None and now_s - s.last_late_s >= c.cfg.late_quiet_s:
        c.resolve(
            "late_data",
            "readings",
            now_s,
            f"no late readings for {c.cfg.late_quiet_s:.0f} s ({s.late_readings} in all)",
        )
        s.last_late_s = None
        s.late_readings = 0
