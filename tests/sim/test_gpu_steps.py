"""The simulator's GPU frames carry each GPU's counter step since its rack's previous poll
(``GpuFleet.poll``), in both encodings, read back with the topic's contract."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from schemas.registry import contract_for
from schemas.telemetry import GpuFrame
from schemas.validation import Limits, Rejection
from streams.sim.encode import ENCODINGS, GPU_TOPIC, Encoding, FrameEncoder
from streams.sim.faults import FaultConfig
from streams.sim.model import SiteModel

from .helpers import T0, small

Key = tuple[str, int]


def _sent(model: SiteModel, encoding: Encoding, seconds: int) -> list[GpuFrame]:
    """Every GPU frame the encoder sends in ``seconds``, decoded with the contract; each
    second's frames also equal the model's own ``gpu_frames``."""
    encoder = FrameEncoder(model, encoding)
    contract = contract_for(GPU_TOPIC)
    out: list[GpuFrame] = []
    for k in range(seconds):
        step = model.step(T0 + k)
        got = [
            contract.decode(v, Limits(now_s=T0 + k))
            for t, _, v in encoder.encode(step)
            if t == GPU_TOPIC
        ]
        assert not [g for g in got if isinstance(g, Rejection)], got
        assert got == step.gpu_frames()
        out.extend(g for g in got if isinstance(g, GpuFrame))
    return out


def _by_gpu(frames: list[GpuFrame]) -> dict[Key, list[tuple[GpuFrame, int]]]:
    polls: dict[Key, list[tuple[GpuFrame, int]]] = defaultdict(list)
    for f in frames:
        for i, key in enumerate(zip(f.node_id, f.gpu_index, strict=True)):
            polls[key].append((f, i))
    return polls


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_steps_at_a_5_s_cadence_add_up_to_the_counter(encoding: Encoding) -> None:
    sf = small(gpu_period_s=5, poll_jitter_s=0.4, missed_poll_share=0.2)
    frames = _sent(SiteModel(sf.site, sf.sim), encoding, 60)
    seen_first: set[str] = set()
    for f in frames:  # a rack's first poll has no previous one: the columns are left out
        if f.source_id not in seen_first:
            seen_first.add(f.source_id)
            assert (f.energy_step_mj, f.step_s, f.step_power_w) == (None, None, None)
    polls = _by_gpu(frames)
    assert len(polls) > 100 and seen_first == {f.source_id for f in frames}
    gaps = set()
    for key, seq in polls.items():
        assert len(seq) >= 8, key  # 60 s at 5 s, some polls missed
        for (prev, j), (cur, i) in zip(seq, seq[1:], strict=False):
            assert cur.energy_step_mj is not None and cur.step_s is not None
            assert cur.step_power_w is not None
            assert cur.energy_step_mj[i] == cur.energy_mj[i] - prev.energy_mj[j]  # type: ignore[operator]
            assert cur.step_s[i] == cur.ts_s - prev.ts_s > 0
            assert cur.step_power_w[i] == prev.power_w[j]
            gaps.add(round(cur.ts_s - prev.ts_s))
        (first, a), (last, b) = seq[0], seq[-1]
        total = sum(f.energy_step_mj[i] for f, i in seq[1:])  # type: ignore[index,misc]
        assert total == last.energy_mj[b] - first.energy_mj[a]  # type: ignore[operator]
    assert 5 in gaps and 10 in gaps  # missed polls make longer steps


def test_the_first_poll_at_1_s_has_no_steps_and_the_next_do() -> None:
    sf = small()
    model = SiteModel(sf.site, sf.sim)
    first = model.step(T0).gpu_frames()
    assert all(f.energy_step_mj is None and f.step_s is None for f in first)
    second = model.step(T0 + 1).gpu_frames()
    for a, b in zip(first, second, strict=True):
        assert b.step_s == [b.ts_s - a.ts_s] * len(b.power_w)
        assert b.step_power_w == a.power_w
        assert b.energy_step_mj == [y - x for x, y in zip(a.energy_mj, b.energy_mj, strict=True)]  # type: ignore[operator]


def test_a_counter_reset_gives_no_step_for_its_gpus_only() -> None:
    sf = small(gpu_period_s=5)
    model = SiteModel(sf.site, sf.sim, FaultConfig(resets_per_hour=360.0))
    frames = _sent(model, "json", 40)
    assert model.gpus.resets > 0
    holes = 0  # (GPU, poll) pairs without a step
    for seq in _by_gpu(frames).values():
        for (prev, j), (cur, i) in zip(seq, seq[1:], strict=False):
            assert cur.energy_step_mj is not None  # the rack's other GPUs have steps
            e0, e1 = prev.energy_mj[j], cur.energy_mj[i]
            assert e0 is not None and e1 is not None
            if cur.energy_step_mj[i] is None:
                # Reset since the previous poll: counters start above 1e10 mJ, and one
                # restarted less than a minute ago is far below. (It need not have gone
                # back: reset twice, it may pass the reading after the first reset.)
                holes += 1
                assert e1 < 1e10
                assert cur.step_s is not None and cur.step_power_w is not None
                assert cur.step_s[i] is None and cur.step_power_w[i] is None
            else:
                assert e1 >= e0 and cur.energy_step_mj[i] == e1 - e0
    assert holes > 0


def test_a_reset_counter_has_no_step_even_if_it_ends_above_the_last_reading() -> None:
    sf = small()
    fleet = SiteModel(sf.site, sf.sim).gpus
    stamps = np.full(len(fleet.racks), T0)
    fleet.step(T0, 0.0)
    fleet.poll(None, stamps)
    fleet.step(T0 + 1, 0.0)
    fleet._reset_counters(1.0)  # every node
    fleet.energy_mj += 1e13  # the restarted counter passes the old reading
    fleet.counter_mj = fleet.energy_mj.astype(np.int64)
    steps = fleet.poll(None, stamps + 1)
    assert not any(steps.rack_has)
    fleet.step(T0 + 2, 0.0)
    assert all(fleet.poll(None, stamps + 2).rack_has)  # steps again from the reset counter


def test_a_stamp_not_after_the_previous_poll_has_no_step() -> None:
    sf = small()
    fleet = SiteModel(sf.site, sf.sim).gpus
    stamps = np.full(len(fleet.racks), T0)
    fleet.step(T0, 0.0)
    fleet.poll(None, stamps)
    fleet.step(T0 + 1, 0.0)
    back = stamps.copy()
    back[0] -= 1.0  # rack 0's clock stepped back
    due = [True] * len(fleet.racks)
    due[1] = False  # rack 1 does not poll
    steps = fleet.poll(due, back + np.where(np.arange(len(back)) == 0, 0.0, 1.0))
    assert steps.rack_has[0] is False and steps.rack_has[1] is False
    assert all(steps.rack_has[2:])
    r = fleet.racks[1]
    fleet.step(T0 + 2, 0.0)
    # Rack 1 steps from its poll two seconds back, rack 2 from one second back.
    later = fleet.poll(None, stamps + 2)
    assert later.columns(1, r.start, r.stop)[1] == [2.0] * (r.stop - r.start)
    r2 = fleet.racks[2]
    assert later.columns(2, r2.start, r2.stop)[1] == [1.0] * (r2.stop - r2.start)


def test_an_encoder_that_missed_a_second_still_sends_the_right_steps() -> None:
    """The JSON encoder reuses a rack's encoded power_w as its next step_power_w; one that
    did not see the previous poll encodes it afresh."""
    sf = small()
    model = SiteModel(sf.site, sf.sim)
    encoder = FrameEncoder(model, "json")
    contract = contract_for(GPU_TOPIC)
    for k in range(6):
        step = model.step(T0 + k)
        if k == 3:
            continue  # not encoded: the cache is a poll behind
        got = [contract.decode(v, Limits(now_s=T0 + k)) for t, _, v in encoder.encode(step)]
        frames = [g for g in got if isinstance(g, GpuFrame)]
        assert frames == step.gpu_frames()
        if k > 0:
            assert all(f.step_power_w is not None for f in frames)
