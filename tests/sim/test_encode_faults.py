"""The fast encoder's bytes are the contracts' frames; transport faults do what they say."""

from __future__ import annotations

import pytest

from schemas.registry import contract_for
from schemas.validation import Limits, Rejection
from streams.sim.encode import ASIC_TOPIC, GPU_TOPIC, METER_TOPIC, FrameEncoder
from streams.sim.faults import FaultConfig, Outgoing, TransportFaults
from streams.sim.model import SiteModel
from streams.sim.shapes import LIMIT_W, job_series, load_templates
from tests.sim.helpers import T0, small


def test_encoded_frames_decode_to_the_model_frames() -> None:
    sf = small()
    model = SiteModel(sf.site, sf.sim)
    encoder = FrameEncoder(model)
    step = model.step(T0)
    msgs = encoder.encode(step)
    expected = {
        GPU_TOPIC: step.gpu_frames(),
        ASIC_TOPIC: step.asic_frames(),
        METER_TOPIC: [step.meter],
    }
    limits = Limits(now_s=T0)
    for topic, frames in expected.items():
        got = [contract_for(topic).decode(v, limits) for t, _, v in msgs if t == topic]
        assert not [g for g in got if isinstance(g, Rejection)], got
        assert got == frames
    keys = [k for t, k, _ in msgs if t == GPU_TOPIC]
    assert keys == [r.source_id.encode() for r in model.gpu_racks]


def _msgs(step: int, n: int = 200) -> list[Outgoing]:
    return [("t", f"{step}".encode(), f"{step}-{i}".encode()) for i in range(n)]


@pytest.mark.parametrize(
    ("cfg", "first_len", "second_len", "flushed"),
    [
        (FaultConfig(), 200, 200, 0),
        (FaultConfig(drop_share=1.0), 0, 0, 0),
        (FaultConfig(duplicate_share=1.0), 400, 400, 0),
        # Everything held back: the first second sends nothing, the next sends the first's.
        (FaultConfig(reorder_share=1.0), 0, 200, 200),
    ],
)
def test_transport_faults(cfg: FaultConfig, first_len: int, second_len: int, flushed: int) -> None:
    faults = TransportFaults(cfg, seed=1)
    first = faults.apply(_msgs(1))
    second = faults.apply(_msgs(2))
    assert (len(first), len(second), len(faults.flush())) == (first_len, second_len, flushed)


def test_reordered_frames_arrive_after_the_next_second() -> None:
    faults = TransportFaults(FaultConfig(reorder_share=0.2), seed=3)
    out = faults.apply(_msgs(1)) + faults.apply(_msgs(2)) + faults.flush()
    assert sorted(out) == sorted(_msgs(1) + _msgs(2))  # nothing lost, nothing doubled
    late = [i for i, m in enumerate(out) if m[1] == b"1" and i > 0 and out[i - 1][1] == b"2"]
    assert late, "some frames of second 1 come after frames of second 2"
    assert 20 < faults.reordered < 80  # 20 % of 400


def test_share_faults_land_near_their_rates() -> None:
    faults = TransportFaults(FaultConfig(drop_share=0.1, duplicate_share=0.05), seed=2)
    out = faults.apply(_msgs(1, 10_000))
    assert 900 < faults.dropped < 1100
    assert 380 < faults.duplicated < 520
    assert len(out) == 10_000 - faults.dropped + faults.duplicated


@pytest.mark.parametrize("bad", [FaultConfig(drop_share=1.5), FaultConfig(resets_per_hour=-1)])
def test_bad_fault_config_is_refused(bad: FaultConfig) -> None:
    with pytest.raises(ValueError, match="fault"):
        bad.check()


def test_skewed_sources_stamp_their_own_clock() -> None:
    sf = small()
    model = SiteModel(sf.site, sf.sim, FaultConfig(skew_share=1.0, skew_s=5.0))
    step = model.step(T0)
    stamps = {f.ts_s - T0 for f in step.gpu_frames() + step.asic_frames()}
    assert stamps <= {-5.0, 5.0}
    assert abs(step.meter.ts_s - T0) == 5.0


def test_templates_match_the_trace_facts() -> None:
    # data/SOURCES.md: idle 73 W; training 653 W mean with dips; checkpoint pauses 233 W.
    tpl = load_templates()
    assert 65 < tpl.idle * LIMIT_W < 80
    for train in tpl.train:
        assert 500 < sum(train) / len(train) * LIMIT_W <= 700
    assert all(min(d) * LIMIT_W < 250 for d in tpl.dips)
    assert sum(tpl.gpu_spread) == pytest.approx(len(tpl.gpu_spread), abs=1e-3)


@pytest.mark.parametrize("kind", ["training", "inference"])
def test_job_series_is_reproducible_and_bounded(kind: str) -> None:
    tpl = load_templates()
    one = job_series(tpl, kind, seed=5, length_s=600, checkpoint_every_s=100)  # type: ignore[arg-type]
    two = job_series(tpl, kind, seed=5, length_s=600, checkpoint_every_s=100)  # type: ignore[arg-type]
    other = job_series(tpl, kind, seed=6, length_s=600, checkpoint_every_s=100)  # type: ignore[arg-type]
    assert len(one) == 600
    assert (one == two).all()
    assert not (one == other).all()
    assert one.min() >= tpl.idle * 0.99 and one.max() <= 1.0
