"""Poll cadences of the simulator: 1 s (the default, frames as before), 5 s and 60 s, with
jitter and missed polls; and the pipeline's power by use at each."""

from __future__ import annotations

import math

import msgspec
import pytest

from streams.decisions.power import (
    CombineState,
    PartialState,
    close_all,
    combine,
    fold_partials,
    index_site,
)
from streams.sim.encode import FrameEncoder
from streams.sim.model import SiteModel

from .helpers import T0, all_reporting, small


def test_the_default_cadence_sends_every_source_every_second() -> None:
    model = SiteModel(*all_reporting(small()))
    same = SiteModel(*all_reporting(small(asic_period_s=1, gpu_period_s=1)))
    for k in range(3):
        a, b = model.step(T0 + k), same.step(T0 + k)
        assert a.asic_frames() == b.asic_frames()
        assert len(a.asic_frames()) == len(model.asic_racks)
        assert len(a.gpu_frames()) == len(model.gpu_racks)
        assert a.meter_due


@pytest.mark.parametrize("period", [5, 60])
def test_each_asic_source_polls_once_a_period_at_its_own_phase(period: int) -> None:
    model = SiteModel(*all_reporting(small(asic_period_s=period)))
    encoder = FrameEncoder(model, "json")
    polls: dict[str, list[int]] = {r.source_id: [] for r in model.asic_racks}
    for k in range(2 * period):
        step = model.step(T0 + k)
        for f in step.asic_frames():
            polls[f.source_id].append(k)
        sent = [m for m in encoder.encode(step) if m[0] == "telemetry.asic.v1"]
        assert len(sent) == len(step.asic_frames())
        assert len(step.gpu_frames()) == len(model.gpu_racks)
    assert all(len(ks) == 2 and ks[1] - ks[0] == period for ks in polls.values())


def test_missed_polls_and_jitter() -> None:
    model = SiteModel(
        *all_reporting(small(gpu_period_s=1, missed_poll_share=0.5, poll_jitter_s=0.5))
    )
    sent = total = 0
    for k in range(40):
        step = model.step(T0 + k)
        total += len(model.gpu_racks)
        frames = step.gpu_frames()
        sent += len(frames)
        # Stamps: the second, plus the source's clock skew, late by up to the jitter.
        skew = max(abs(s) for s in model.gpu_skew)
        assert all(T0 + k - skew <= f.ts_s < T0 + k + skew + 0.5 for f in frames)
    assert 0.3 < sent / total < 0.7


@pytest.mark.parametrize("period", [1, 5, 60])
def test_mining_energy_does_not_depend_on_the_asic_poll_period(period: int) -> None:
    """The small site's miners, polled every ``period`` s, through both power stages: mining
    energy over 4 minutes in the middle of 6 is the devices' true energy (sample-and-hold
    misses only the changes inside a period: the fleet's draw is steady)."""
    site, sim = all_reporting(small(asic_period_s=period))
    site = msgspec.structs.replace(site, meters=[])  # mining from the devices
    raw = msgspec.to_builtins(site)
    raw["max_staleness"] = {"asic_s": 3.0 * period}
    site = msgspec.convert(raw, type(site))
    model, idx = SiteModel(site, sim), {site.site_id: index_site(site)}
    pstate, cstate = PartialState(), CombineState()
    powers, truth = [], {}
    for k in range(360):
        step = model.step(T0 + k)
        truth[int(T0) + k] = step.truth.mining_w
        pstate, folded = fold_partials(
            pstate, [*step.asic_frames(), *step.gpu_frames()], idx, source_partition="t:0"
        )
        cstate, out = combine(cstate, folded.partials, idx, now_s=0.0)
        powers.extend(out.powers)
    powers.extend(close_all(cstate, idx, now_s=0.0)[1].powers)
    window = range(int(T0) + 60, int(T0) + 300)
    got = math.fsum(p.mining_w for p in powers if p.ts_s in window)
    want = math.fsum(truth[s] for s in window)
    assert got == pytest.approx(want, rel=0.01)
