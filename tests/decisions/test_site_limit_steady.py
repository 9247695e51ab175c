"""Steady conditions give steady commands: a night of AI load hovering at the site limit.

Site (conftest): limit 140 kW, fleet 60 kW, overhead 5 kW. AI draws 73-77 kW (seeded noise),
so with every miner on the site sits at 138-142 kW: over the limit about half the time.
Mining follows the controller's commands (nameplate of the miners awake).
"""

from __future__ import annotations

import random

from schemas.events import CurtailmentEvent
from streams.decisions.curtailment import ControllerState, controller_step
from streams.decisions.fleet import fleet_roster

from .conftest import T0, make_site
from .helpers import power

NIGHT_S = 8 * 3600
STEP_S = 10


def _night(**policy: float) -> list[CurtailmentEvent]:
    site = make_site(peak_windows=[], **policy)  # no 4CP window in the night
    fleet = fleet_roster(site)
    per_miner = {m.model: m.power_w for m in fleet.models}
    asleep: set[str] = set()
    rng = random.Random(23)
    state = ControllerState(site_id="s1")
    events: list[CurtailmentEvent] = []
    for t in range(T0, T0 + NIGHT_S, STEP_S):
        mining = sum(
            per_miner[m.model] for m in fleet.models for i in m.miner_ids if i not in asleep
        )
        ai = rng.uniform(73_000.0, 77_000.0)
        state, out = controller_step(state, [power(t, ai=ai, mining=mining)], site, fleet)
        for c in out.commands:
            if c.action == "sleep":
                asleep.update(c.miner_ids)
            elif c.action == "wake":
                asleep.difference_update(c.miner_ids)
        events += out.events
    return events


def test_a_steady_night_gives_a_handful_of_events() -> None:
    events = _night()
    assert 1 <= len(events) <= 5, [(e.kind, e.ts_s - T0) for e in events]
    assert [e.kind for e in events] == ["issued", "achieved"]
    assert events[0].kind == "issued" and events[0].reasons == ["site_limit"]


def test_without_release_band_and_dwell_the_same_night_flaps() -> None:
    """The rule before: release as soon as AI + overhead + baseline fit under the limit."""
    events = _night(site_limit_release_fraction=0.0, site_limit_min_dwell_s=0.0)
    assert len([e for e in events if e.kind == "issued"]) > 20
