"""Physics of the pure site model: meters add up, counters count, miners obey (or not)."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.events import MinerCommand
from schemas.telemetry import AsicFrame, GpuFrame
from streams.decisions.fleet import fleet_roster
from streams.sim.asics import SLEEP_W
from streams.sim.faults import FaultConfig
from streams.sim.model import SiteModel, Step
from streams.sim.spec import JobSpec
from tests.sim.helpers import T0, all_reporting, small

S21_DOWN_S = 5  # small.toml: S21 keeps AsicModel's defaults, ramp_down_s 5 ...
S21_UP_S = 60  # ... and ramp_up_s 60


def _model(**sim: object) -> SiteModel:
    sf = small(**sim)
    return SiteModel(sf.site, sf.sim)


def _cmd(model: SiteModel, action: str, ids: list[str], limit: float | None = None) -> MinerCommand:
    return MinerCommand(
        command_id=f"c-{action}",
        site_id=model.site.site_id,
        event_id=None,
        issued_at_s=T0,
        action=action,  # type: ignore[arg-type]
        miner_ids=ids,
        power_limit_w=limit,
        priority=1,
        deadline_s=T0 + 60,
    )


def _s21_ids(model: SiteModel) -> list[str]:
    return fleet_roster(model.site).model("S21").miner_ids


def _by_miner(step: Step, field: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in step.asic_frames():
        out.update(zip(f.miner_id, getattr(f, field), strict=True))
    return out


def _s21_power(step: Step, ids: list[str]) -> np.ndarray:
    p = _by_miner(step, "power_w")
    return np.array([np.nan if p[i] is None else p[i] for i in ids], dtype=float)


def test_poi_meter_is_the_sum_of_its_parts() -> None:
    site, sim = all_reporting(small())
    model = SiteModel(site, sim)
    for k in range(30):
        step = model.step(T0 + k)
        m = dict(zip(step.meter.meter_id, step.meter.power_w, strict=True))
        it = m["AI-MAIN"] + m["MINING-MAIN"]
        overhead = site.overhead_fixed_mw * 1e6 + site.overhead_fraction * it
        # Cooling swings +-5 % of its share over the day; losses <= 0.5 %; meters 0.1 %.
        assert m["POI-1"] == pytest.approx(it + overhead, rel=0.012)
        gpus = [f for f in step.gpu_frames()]
        gpu_w = sum(sum(f.power_w) for f in gpus)
        nodes = sum(len(set(f.node_id)) for f in gpus)
        node_w = {p.name: p.node_overhead_w for p in site.gpu_pools}
        assert len(node_w) == 2 and len(set(node_w.values())) == 1
        ai_devices = gpu_w + nodes * next(iter(node_w.values()))
        assert m["AI-MAIN"] == pytest.approx(ai_devices, rel=0.005)
        reported = [w for f in step.asic_frames() for w in f.power_w if w is not None]
        assert m["MINING-MAIN"] == pytest.approx(sum(reported), rel=0.005)


def test_energy_registers_integrate_power() -> None:
    model = _model()
    steps = [model.step(T0 + k) for k in range(120)]
    first = dict(zip(steps[0].meter.meter_id, steps[0].meter.energy_wh, strict=True))
    last = dict(zip(steps[-1].meter.meter_id, steps[-1].meter.energy_wh, strict=True))
    for meter in first:
        powers = [
            dict(zip(s.meter.meter_id, s.meter.power_w, strict=True))[meter] for s in steps[1:]
        ]
        expected_wh = sum(powers) / 3600.0  # 1 s per reading
        assert last[meter] - first[meter] == pytest.approx(expected_wh, rel=0.002)  # type: ignore[operator]


def _gpu_columns(step: Step) -> tuple[list[str], np.ndarray, np.ndarray]:
    frames: list[GpuFrame] = step.gpu_frames()
    nodes = [n for f in frames for n in f.node_id]
    power = np.array([p for f in frames for p in f.power_w])
    energy = np.array([e for f in frames for e in f.energy_mj], dtype=np.int64)
    return nodes, power, energy


def test_nvml_counters_count_power_times_time() -> None:
    model = _model()
    _, _, before = _gpu_columns(model.step(T0))
    for k in range(1, 60):
        _, power, energy = _gpu_columns(model.step(T0 + k))
        # NVML power is the 1 s average, so one second adds power x 1 s (mJ; floor to int).
        assert np.all(np.abs((energy - before) - power * 1000.0) <= 1.0)
        before = energy


def test_counters_fall_only_on_injected_resets() -> None:
    sf = small()
    # 2 % of nodes per second reload their driver; 2 % of meter registers per second reset.
    model = SiteModel(sf.site, sf.sim, FaultConfig(resets_per_hour=0.02 * 3600))
    nodes, _, before = _gpu_columns(model.step(T0))
    wh_before = np.array(model.step(T0 + 1).meter.energy_wh)
    falls = 0
    for k in range(2, 80):
        step = model.step(T0 + k)
        _, power, energy = _gpu_columns(step)
        fell = energy < before
        for node in {nodes[i] for i in np.flatnonzero(fell)}:
            mine = np.array([n == node for n in nodes])
            assert fell[mine].all(), "a driver reload resets every GPU of the node"
            # After a reset the counter holds only this second's energy.
            assert np.all(energy[mine] <= power[mine] * 1000.0 + 1)
        falls += int(fell.sum())
        wh = np.array(step.meter.energy_wh)
        assert np.all((wh >= wh_before) | (wh < 1000.0))  # a reset register restarts near 0
        wh_before = wh
        before = energy
    assert falls > 0
    assert model.gpus.resets > 0


def test_counters_never_fall_without_faults() -> None:
    model = _model()
    _, _, before = _gpu_columns(model.step(T0))
    wh_before = np.array(model.step(T0 + 1).meter.energy_wh)
    for k in range(2, 40):
        step = model.step(T0 + k)
        _, _, energy = _gpu_columns(step)
        assert np.all(energy > before)
        wh = np.array(step.meter.energy_wh)
        assert np.all(wh > wh_before)
        before, wh_before = energy, wh


def test_stock_firmware_reports_no_power() -> None:
    model = _model()
    frames: list[AsicFrame] = model.step(T0).asic_frames()
    firmware = {m.model: m.firmware for m in model.site.asic_models}
    assert set(firmware.values()) == {"stock", "luxos"}
    for f in frames:
        errors = f.error or [None] * len(f.miner_id)
        for state, error in zip(f.state, errors, strict=True):
            assert (error == "timeout") == (state == "offline")
        for model_name, power, state in zip(f.model, f.power_w, f.state, strict=True):
            if firmware[model_name] == "stock" or state == "offline":
                assert power is None
            else:
                assert isinstance(power, float) and power > 1000.0


@pytest.mark.parametrize(
    ("action", "limit", "settle_s", "expected_fraction"),
    [
        ("sleep", None, S21_DOWN_S, 0.0),
        # Half power: the ramp down covers half the span, so it is there in half the time.
        ("set_power", "half", S21_DOWN_S, 0.5),
    ],
)
def test_command_ramps_down_within_ramp_down_s(
    action: str, limit: str | None, settle_s: int, expected_fraction: float
) -> None:
    model = _model(never_share=0.0, late_share=0.0)
    ids = _s21_ids(model)
    base = _s21_power(model.step(T0), ids)
    ok = ~np.isnan(base)
    watts = None if limit is None else 1750.0  # S21 nameplate 3500 W
    res = model.command(_cmd(model, action, ids, watts), T0 + 1)
    assert res.applied == len(ids) and res.ignored == 0 and res.late == 0
    powers = [_s21_power(model.step(T0 + k), ids)[ok] for k in range(1, settle_s + 1)]
    if action == "sleep":
        # Linear ramp: 1 - k/ramp_down_s of the way left after k seconds.
        assert np.all(powers[1] > 0.5 * base[ok])
        assert np.all(powers[-1] <= SLEEP_W * 1.05)
        states = _by_miner(model.step(T0 + settle_s + 1), "state")
        assert {states[i] for i in ids} <= {"sleeping", "offline"}
    else:
        assert powers[-1].mean() == pytest.approx(1750.0, rel=0.01)
        assert powers[-1] == pytest.approx(np.full(ok.sum(), 1750.0), rel=0.05)
        limits = _by_miner(model.step(T0 + settle_s + 1), "power_limit_w")
        assert {limits[i] for i in ids} == {1750.0}


def test_wake_ramps_up_within_ramp_up_s() -> None:
    model = _model(never_share=0.0, late_share=0.0)
    ids = _s21_ids(model)
    base = _s21_power(model.step(T0), ids)
    ok = ~np.isnan(base)
    model.command(_cmd(model, "sleep", ids), T0 + 1)
    for k in range(1, S21_DOWN_S + 1):
        model.step(T0 + k)
    t = T0 + S21_DOWN_S + 1
    model.command(_cmd(model, "wake", ids), t)
    half = None
    for k in range(S21_UP_S):
        p = _s21_power(model.step(t + k), ids)[ok]
        if k + 1 == S21_UP_S // 2:
            half = p
        if k + 1 <= 0.8 * S21_UP_S:
            # Linear: at most 80 % of the way after 80 % of ramp_up_s (1 % reading noise).
            assert np.all(p < 0.85 * base[ok]), "back too early"
    assert half is not None
    assert np.all((half > 0.4 * base[ok]) & (half < 0.6 * base[ok]))
    # Readings carry 1 % noise each: the fleet is back within 1 %, every miner within 6 %.
    assert p.mean() == pytest.approx(base[ok].mean(), rel=0.01)
    assert p == pytest.approx(base[ok], rel=0.06)


def test_non_responding_share_does_not_respond() -> None:
    model = _model(never_share=0.25, late_share=0.0)
    ids = _s21_ids(model)
    base = _s21_power(model.step(T0), ids)
    others = [i for i in model.asics.miner_ids if i not in set(ids)]
    hash_before = _by_miner(model.step(T0 + 1), "hashrate_ths")
    res = model.command(_cmd(model, "sleep", ids), T0 + 2)
    for k in range(2, 40):
        step = model.step(T0 + k)
    p = _s21_power(step, ids)
    ok = ~np.isnan(base)
    still = p[ok] > 0.9 * base[ok]
    # Binomial(120, 0.25): 30 +- 4.7; the model's own count must match what the frames show.
    assert 0.12 < still.mean() < 0.40
    assert still.sum() == pytest.approx(res.ignored, abs=1)
    asleep = p[ok][~still]
    assert np.all(asleep <= SLEEP_W * 1.05)
    hash_after = _by_miner(step, "hashrate_ths")
    untouched = [i for i in others if hash_before[i]]
    assert all(hash_after[i] > 0.9 * hash_before[i] for i in untouched)  # type: ignore[operator]


def test_late_share_responds_after_the_delay() -> None:
    model = _model(never_share=0.0, late_share=0.3, late_delay_s=10.0)
    ids = _s21_ids(model)
    base = _s21_power(model.step(T0), ids)
    ok = ~np.isnan(base)
    model.command(_cmd(model, "sleep", ids), T0 + 1)
    for k in range(1, S21_DOWN_S + 2):
        step = model.step(T0 + k)
    late = _s21_power(step, ids)[ok] > 0.9 * base[ok]
    assert 0.15 < late.mean() < 0.45
    for k in range(S21_DOWN_S + 2, 10 + S21_DOWN_S + 3):
        step = model.step(T0 + k)
    assert np.all(_s21_power(step, ids)[ok] <= SLEEP_W * 1.05)


def test_nodes_of_a_job_move_together_jobs_do_not() -> None:
    jobs = [
        JobSpec(name="a", pool="train", nodes=8, checkpoint_every_s=60.0),
        JobSpec(name="b", pool="train", nodes=8, checkpoint_every_s=97.0),
    ]
    sf = small()
    sim = small(
        jobs=[
            {
                "name": j.name,
                "pool": j.pool,
                "nodes": j.nodes,
                "checkpoint_every_s": j.checkpoint_every_s,
            }
            for j in jobs
        ]
    ).sim
    model = SiteModel(sf.site, sim)
    series = []
    for k in range(400):
        nodes, power, _ = _gpu_columns(model.step(T0 + k))
        series.append(power)
    per_gpu = np.array(series)  # seconds x GPUs
    names = sorted(set(nodes), key=nodes.index)
    node_w = np.stack(
        [per_gpu[:, [n == name for n in nodes]].sum(axis=1) for name in names], axis=1
    )
    train = [n for n in names if "-train-" in n]
    a, b = node_w[:, :8], node_w[:, 8:16]
    assert len(train) == 16
    corr = np.corrcoef(node_w[:, :16].T)
    within = np.concatenate(
        [corr[:8, :8][np.triu_indices(8, 1)], corr[8:, 8:][np.triu_indices(8, 1)]]
    )
    across = corr[:8, 8:].ravel()
    assert within.min() > 0.95
    assert across.max() < 0.6
    # A checkpoint dip of job a is in every one of its nodes in the same second.
    dip = a.mean(axis=1) < 0.5 * np.median(a.mean(axis=1))
    assert dip.any()
    assert np.all(a[dip] < 0.6 * np.median(a, axis=0))
    assert b.shape == a.shape


def test_same_seed_same_frames() -> None:
    one, two = _model(), _model()
    for k in range(3):
        s1, s2 = one.step(T0 + k), two.step(T0 + k)
        assert s1.gpu_frames() == s2.gpu_frames()
        assert s1.asic_frames() == s2.asic_frames()
        assert s1.meter == s2.meter


def test_ai_spike_runs_its_pools_flat_out_only_inside_the_window() -> None:
    from streams.sim.spec import AiSpike

    base = _model()
    spiked = _model(ai_spikes=[AiSpike(start_s=T0 + 5, duration_s=3, fraction=0.97)])
    ai_base = [base.step(T0 + k).truth.ai_w for k in range(10)]
    ai_spiked = [spiked.step(T0 + k).truth.ai_w for k in range(10)]
    limit = sum(p.nodes * p.gpus_per_node * p.gpu_power_limit_w for p in base.site.gpu_pools)
    overhead = sum(p.nodes * p.node_overhead_w for p in base.site.gpu_pools)
    for k in range(10):
        if 5 <= k < 8:
            assert ai_spiked[k] >= 0.96 * limit + overhead > ai_base[k]
        else:
            assert ai_spiked[k] == pytest.approx(ai_base[k])
