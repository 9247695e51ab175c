"""Surplus events from the 1-second ``SitePower`` stream of one site.

A surplus opens when ``surplus_w > threshold_w``, is updated when it changes materially
since the last event sent, and closes when it falls back to the threshold or below, or
when the power stream has a gap longer than ``max_gap_s`` (missing data is never
interpolated into energy). Each ``SitePower`` stands for one second, so its energy is
W x 1 s = W / 3600 Wh. Mining absorbs ``min(mining, surplus)``; the rest is sold back.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from schemas.events import SitePower, SurplusEvent


class SurplusConfig(msgspec.Struct, kw_only=True, frozen=True):
    threshold_w: float = 0.0
    """Open when surplus is strictly above this."""
    update_fraction: float | None = 0.05
    """Send an update when surplus moved by this fraction of the last value sent ..."""
    update_abs_w: float | None = 1e6
    """... or by this many watts, whichever comes first (None disables either)."""
    max_gap_s: int = 5
    """More than this many missing seconds between two ``SitePower`` closes the event.
    Missing seconds inside a shorter gap add no energy (never interpolated)."""


class OpenSurplus(msgspec.Struct, kw_only=True):
    event_id: str
    start_s: int
    last_ts_s: int
    sent_surplus_w: float
    surplus_w: float
    absorbed_w: float
    energy_wh: float = 0.0
    absorbed_wh: float = 0.0
    unabsorbed_wh: float = 0.0


class SurplusState(msgspec.Struct, kw_only=True):
    site_id: str
    last_ts_s: int | None = None
    open: OpenSurplus | None = None


def _material(cfg: SurplusConfig, sent: float, now: float) -> bool:
    change = abs(now - sent)
    if cfg.update_abs_w is not None and change >= cfg.update_abs_w:
        return True
    return cfg.update_fraction is not None and change >= cfg.update_fraction * abs(sent)


def _event(
    site_id: str, o: OpenSurplus, kind: str, ts_s: float, end_s: float | None
) -> SurplusEvent:
    return SurplusEvent(
        event_id=o.event_id,
        site_id=site_id,
        kind=kind,  # type: ignore[arg-type]
        ts_s=ts_s,
        start_s=o.start_s,
        end_s=end_s,
        surplus_w=o.surplus_w,
        absorbed_w=o.absorbed_w,
        unabsorbed_w=o.surplus_w - o.absorbed_w,
        energy_wh=o.energy_wh,
        absorbed_wh=o.absorbed_wh,
        unabsorbed_wh=o.unabsorbed_wh,
    )


def surplus_step(
    state: SurplusState, powers: Iterable[SitePower], config: SurplusConfig | None = None
) -> tuple[SurplusState, list[SurplusEvent]]:
    """Advance the surplus detector of one site over ``powers`` (in time order).

    ``SitePower`` for another site, or not newer than the last one seen, raises
    ``ValueError``: the agent must key its table by site and feed seconds in order.
    """
    cfg = config or SurplusConfig()
    events: list[SurplusEvent] = []
    for sp in powers:
        if sp.site_id != state.site_id:
            raise ValueError(
                f"surplus_step: SitePower of site {sp.site_id!r} fed to state of {state.site_id!r}"
            )
        if state.last_ts_s is not None and sp.ts_s <= state.last_ts_s:
            raise ValueError(
                f"surplus_step: site {sp.site_id} second {sp.ts_s} is not after {state.last_ts_s}"
            )
        o = state.open
        if o is not None and sp.ts_s - o.last_ts_s - 1 > cfg.max_gap_s:
            events.append(_event(state.site_id, o, "close", o.last_ts_s + 1, o.last_ts_s + 1))
            state.open = o = None
        state.last_ts_s = sp.ts_s
        surplus = sp.surplus_w
        if surplus > cfg.threshold_w:
            absorbed = min(max(sp.mining_w, 0.0), surplus)
            if o is None:
                o = state.open = OpenSurplus(
                    event_id=f"{state.site_id}/surplus/{sp.ts_s}",
                    start_s=sp.ts_s,
                    last_ts_s=sp.ts_s,
                    sent_surplus_w=surplus,
                    surplus_w=surplus,
                    absorbed_w=absorbed,
                )
                kind = "open"
            else:
                kind = "update" if _material(cfg, o.sent_surplus_w, surplus) else ""
            o.last_ts_s = sp.ts_s
            o.surplus_w = surplus
            o.absorbed_w = absorbed
            o.energy_wh += surplus / 3600.0
            o.absorbed_wh += absorbed / 3600.0
            o.unabsorbed_wh += (surplus - absorbed) / 3600.0
            if kind:
                o.sent_surplus_w = surplus
                events.append(_event(state.site_id, o, kind, sp.ts_s, None))
        elif o is not None:
            # The surplus ended at the start of this second; report the last values seen.
            events.append(_event(state.site_id, o, "close", sp.ts_s, sp.ts_s))
            state.open = None
    return state, events
