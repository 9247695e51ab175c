"""GPU energy-counter steps in the power stages and the marts (``docs/cadence.md``).

A collector puts each GPU's counter difference since its previous poll in the frame
(``GpuFrame.energy_step_mj``); stage 1 keeps the steps it can place, stage 2 passes them on
for their second (never held), and ``interval_energy`` puts their energy in place of what
sample-and-hold said over the same seconds.
"""

from __future__ import annotations

import math

import msgspec
import polars as pl
import pytest

from schemas.events import SitePower
from schemas.site import SiteConfig
from schemas.telemetry import GpuFrame, MeterFrame
from streams.collectors.gpu_steps import GpuPoll, StepTracker
from streams.decisions.power import (
    CombineState,
    PartialState,
    close_all,
    combine,
    fold_partials,
    gpu_counter_sums,
    index_site,
)
from tests.decisions.conftest import T0, make_site
from transforms.energy import COUNTER_COLUMNS, SITE_POWER_COLUMNS, interval_energy

NODE = "s1-h100-n0000"
OVERHEAD_W = 1000.0  # the conftest's h100 node


def test_a_step_replaces_the_seconds_its_first_poll_was_held() -> None:
    # Polls at T0+0.4 and T0+5.4: the first is held over seconds T0..T0+4 (five seconds).
    counter, sampled, held = gpu_counter_sums(T0 + 5.4, [3_600_000, None], [5.0, None],
                                              [700.0, None])
    assert counter == pytest.approx(1.0)  # 3.6e6 mJ = 1 Wh
    assert sampled == pytest.approx(700.0 * 5 / 3600)
    assert held == 5


def test_a_step_across_an_interval_boundary_is_left_to_the_samples() -> None:
    # Held seconds 898..902 straddle the boundary at 900: its split would be a guess.
    assert gpu_counter_sums(T0 + 903.4, [3_600_000], [5.0], [700.0]) == (0.0, 0.0, 0)


def test_a_poll_just_after_an_interval_closes_that_intervals_last_step() -> None:
    # Held seconds 895..899, all in the first interval; the marts book second 900's steps
    # to the interval of second 899.
    assert gpu_counter_sums(T0 + 900.4, [3_600_000], [5.0], [700.0]) == pytest.approx(
        (1.0, 700.0 * 5 / 3600, 5))
    assert gpu_counter_sums(T0 + 900.0, [3_600_000], [5.0], [700.0])[2] == 5


def test_two_polls_in_one_second_hold_nothing_but_count_their_energy() -> None:
    # The later poll of a second is the one held: the earlier one's step replaces nothing.
    assert gpu_counter_sums(T0 + 0.9, [360_000], [0.5], [700.0]) == pytest.approx(
        (0.1, 0.0, 0))


def site_without_ai_meter(gpu_s: float) -> SiteConfig:
    site = make_site()
    raw = {**msgspec.to_builtins(site), "max_staleness": {"gpu_s": gpu_s}}
    site = msgspec.convert(raw, SiteConfig)
    return msgspec.structs.replace(
        site, meters=[m for m in site.meters if m.role != "ai"])


def true_power_w(sec: int) -> float:
    """Each of 4 GPUs: a 1-s square wave between 200 and 700 W in the middle of every
    interval (seconds 100 to 799 of it), 400 W elsewhere; constant within a second."""
    into = (sec - T0) % 900
    if 100 <= into < 800:
        return 700.0 if sec % 2 else 200.0
    return 400.0


def node_frames(period_s: int, seconds: int, *, steps: bool,
                phase_s: float = 0.37) -> list[GpuFrame]:
    """One node of 4 GPUs polled every ``period_s`` at ``phase_s`` past the second; the
    counter integrates ``true_power_w`` exactly; the power is that second's average."""
    tracker = StepTracker()
    energy_mj = 0.0
    frames = []
    for k in range(seconds):
        sec = T0 + k
        w = true_power_w(sec)
        at = sec + phase_s
        count = energy_mj + w * phase_s * 1000.0  # the counter mid-second, at the poll
        energy_mj += w * 1000.0
        if k % period_s:
            continue
        keys = [(NODE, g) for g in range(4)]
        poll = GpuPoll(ts_s=at, keys=keys, energy_mj=[round(count)] * 4, power_w=[w] * 4)
        step = tracker.step(NODE, poll)
        frames.append(GpuFrame(
            site_id="s1", source_id=NODE, ts_s=at, seq=k, node_id=[NODE] * 4,
            gpu_index=list(range(4)), power_w=[w] * 4, energy_mj=[round(count)] * 4,
            energy_step_mj=step.energy_step_mj if steps and step.any else None,
            step_s=step.step_s if steps and step.any else None,
            step_power_w=step.step_power_w if steps and step.any else None,
        ))
    return frames


def meters(sec: int, ai: bool) -> MeterFrame:
    node_w = 4 * true_power_w(sec) + OVERHEAD_W
    ids, watts = ["m-poi", "m-mine"], [node_w, 0.0]
    if ai:
        ids, watts = [*ids, "m-ai"], [*watts, node_w]
    return MeterFrame(site_id="s1", source_id="gw", ts_s=sec + 0.1, seq=sec, meter_id=ids,
                      power_w=watts, energy_wh=[None] * len(ids))


def run(site: SiteConfig, frames: list[GpuFrame], seconds: int) -> list[SitePower]:
    sites = {site.site_id: index_site(site)}
    by_second: dict[int, list[GpuFrame | MeterFrame]] = {}
    for f in frames:
        by_second.setdefault(math.floor(f.ts_s), []).append(f)
    pstate, cstate = PartialState(), CombineState()
    out: list[SitePower] = []
    for k in range(seconds):
        ai = any(m.role == "ai" for m in site.meters)
        batch = [*by_second.get(T0 + k, []), meters(T0 + k, ai)]
        pstate, folded = fold_partials(pstate, batch, sites, source_partition="t:0")
        cstate, combined = combine(cstate, folded.partials, sites, now_s=0.0)
        out.extend(combined.powers)
    cstate, combined = close_all(cstate, sites, now_s=0.0)
    out.extend(combined.powers)
    return out


def energy(powers: list[SitePower]) -> pl.DataFrame:
    frame = pl.DataFrame([msgspec.structs.asdict(p) for p in powers], infer_schema_length=None)
    counters = frame.select(COUNTER_COLUMNS).drop_nulls()
    return interval_energy(frame.select(SITE_POWER_COLUMNS), ai_counter=counters)


def truth_mwh(interval: int) -> float:
    start = T0 + 900 * interval
    return sum(4 * true_power_w(s) + OVERHEAD_W for s in range(start, start + 900)) / 3.6e9


@pytest.mark.parametrize("period_s", [2, 4, 10])
def test_counters_give_the_true_ai_energy_where_samples_alias(period_s: int) -> None:
    """A 1-s square wave polled every 2, 4 or 10 s: sample-and-hold sees only its 200 W
    phase (AI energy 28 % low); with the counters the AI energy is the truth, and the overhead
    (POI minus the uses) is the node's overhead, not the samples' error."""
    seconds = 2 * 900 + 5
    site = site_without_ai_meter(gpu_s=3.0 * period_s)
    with_steps = energy(run(site, node_frames(period_s, seconds, steps=True), seconds))
    samples = energy(run(site, node_frames(period_s, seconds, steps=False), seconds))
    second = with_steps.filter(pl.col("interval_start_s") == T0 + 900).row(0, named=True)
    aliased = samples.filter(pl.col("interval_start_s") == T0 + 900).row(0, named=True)
    truth = truth_mwh(1)
    assert aliased["ai_mwh"] / truth - 1 < -0.2  # the polls all fall in the 200 W phase
    assert second["ai_mwh"] == pytest.approx(truth, rel=1e-9)
    assert second["ai_counter_mwh"] > 0.9 * truth * 4 * 450 / (4 * 450 + OVERHEAD_W)
    # The node's overhead is in AI (a site-file constant per node); the POI is exactly the
    # node, so the site overhead is nothing, where the samples made it their error.
    assert second["overhead_mwh"] == pytest.approx(0.0, abs=1e-12)
    assert aliased["overhead_mwh"] == pytest.approx(truth - aliased["ai_mwh"], rel=1e-9)
    assert second["total_mwh"] == pytest.approx(aliased["total_mwh"], rel=1e-12)


def test_a_step_longer_than_the_gpu_staleness_is_left_to_the_samples() -> None:
    # Polled every 10 s but held only 3 s: the samples have a gap, which no step fills.
    seconds = 60
    site = site_without_ai_meter(gpu_s=3.0)
    powers = run(site, node_frames(10, seconds, steps=True), seconds)
    assert all(p.ai_counter_wh is None for p in powers)


def test_steps_count_for_their_own_second_and_never_over_the_ai_meter() -> None:
    seconds = 30
    frames = node_frames(5, seconds, steps=True)
    powers = run(site_without_ai_meter(gpu_s=15.0), frames, seconds)
    with_counter = [p.ts_s - T0 for p in powers if p.ai_counter_wh is not None]
    assert with_counter == [5, 10, 15, 20, 25]
    metered = run(site_without_ai_meter(gpu_s=15.0), frames, seconds)
    metered = run(msgspec.structs.replace(site_without_ai_meter(15.0), meters=make_site().meters),
                  frames, seconds)
    assert all(p.ai_counter_wh is None for p in metered)
    assert all("ai_from_devices" not in p.flags for p in metered)
