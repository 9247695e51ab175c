"""Packed ASIC frames on stage 1's hot path (``streams.agents.asic_columns``).

The batch check accepts no frame that the contract refuses; its sums are those of the
contract's frame; and stage 1 gives the same partials, alerts and findings for miners sent
packed as for the same miners sent as JSON, through alerts that fire and resolve.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.packed import pack
from schemas.registry import CONTRACTS
from schemas.telemetry import AsicFrame
from schemas.validation import Limits, Rejection
from streams.agents.asic_columns import asic_sums
from streams.agents.messages import QualityIn, Stage1State
from streams.decisions.power import AsicSums
from tests.agents.packed_helpers import pack_anyway
from tests.agents.test_stage1 import NOW, run

ASIC = CONTRACTS["telemetry.asic.v1"]
LIMITS = Limits(now_s=NOW)
N = 6


def frame(seq: int = 1, ts: float = NOW, **columns: Any) -> AsicFrame:
    doc: dict[str, Any] = {
        "site_id": "small",
        "source_id": "c-1",
        "ts_s": ts,
        "seq": seq,
        "miner_id": [f"small-S21-{i:05d}" for i in range(N)],
        "model": ["S21"] * N,
        "hashrate_ths": [200.0 + i for i in range(N)],
        "power_w": [3500.0, None, 3400.0, None, 3600.0, 3550.0],
        "temp_c": [70.0, 71.0, None, 72.0, 69.0, 70.5],
        "fan_rpm": [4000, None, 4100, 4000, 4000, 4200],
        "state": ["hashing"] * N,
        "error": [None] * N,
    }
    doc.update(columns)
    return AsicFrame(**doc)


def test_sums_are_those_of_the_decoded_frame() -> None:
    f = frame()
    (got,) = asic_sums([pack(f)], LIMITS) or []
    assert isinstance(got, AsicSums)
    assert got.readings == N and got.model == "S21"
    assert got.hashrate_ths == pytest.approx(sum(f.hashrate_ths))
    assert got.reported_w == pytest.approx(3500.0 + 3400.0 + 3600.0 + 3550.0)
    assert got.missing_w == 2 and got.missing_hashrate_ths == pytest.approx(201.0 + 203.0)
    assert got.min_hashing_ths == 200.0 and got.max_temp_c == 72.0
    assert got.full() == ASIC.decode(pack(f), LIMITS) == f


def test_a_frame_with_no_temperature_has_none_and_a_frame_of_two_models_comes_whole() -> None:
    cool = frame(temp_c=[None] * N)
    mixed = frame(model=["S21", "S19"] * (N // 2))
    got = asic_sums([pack(cool), pack(mixed)], LIMITS)
    assert got is not None
    assert isinstance(got[0], AsicSums) and got[0].max_temp_c is None
    assert got[1] == mixed


_bad = st.sampled_from(
    [math.nan, math.inf, -math.inf, -1.0, 0.0, 9_999.0, 10_001.0, 50_001.0, 1e308, None, -1]
    + ["offline", "melting", None, "S19"]
)


@settings(max_examples=300, deadline=None)
@given(
    column=st.sampled_from(
        ["hashrate_ths", "power_w", "temp_c", "fan_rpm", "state", "model", "miner_id", "error"]
    ),
    at=st.integers(0, N - 1),
    value=_bad,
    ts_shift=st.sampled_from([0.0, 0.0, 1e6, -1e7]),
)
def test_the_batch_check_accepts_nothing_the_contract_refuses(
    column: str, at: int, value: Any, ts_shift: float
) -> None:
    doc = msgspec.to_builtins(frame())
    col = list(doc[column])
    col[at] = value
    doc[column] = col
    doc["ts_s"] = NOW + ts_shift
    raw = pack_anyway(doc, AsicFrame)
    verdict = ASIC.decode(raw, LIMITS)
    got = asic_sums([pack(frame()), raw], LIMITS)
    if isinstance(verdict, Rejection):
        assert got is None
    elif got is not None:
        one = got[1]
        assert (one.full() if isinstance(one, AsicSums) else one) == verdict


def _second(
    t: int,
    *,
    temp0: float = 70.0,
    rate1: float = 201.0,
    model: str = "S21",
    state2: str = "hashing",
    container: int = 1,
) -> AsicFrame:
    """One scrape of container ``container`` (its own six miners) at second ``t``."""
    first = (container - 1) * N
    return frame(
        seq=t + 1,
        ts=NOW + t,
        source_id=f"c-{container}",
        miner_id=[f"small-S21-{first + i:05d}" for i in range(N)],
        model=[model] * N,
        temp_c=[temp0, 71.0, None, 72.0, 69.0, 70.5],
        hashrate_ths=[200.0, rate1, 0.0 if state2 != "hashing" else 202.0, 203.0, 204.0, 205.0],
        state=["hashing", "hashing", state2, "hashing", "hashing", "hashing"],
    )


SCENARIO = [
    _second(0),
    _second(0, container=2, state2="offline"),  # an offline miner hashes nothing: no alert
    _second(1, temp0=91.0),  # miner 0 too hot: fires
    _second(1, container=2, temp0=82.0),  # another container, warm, none of its miners alerted
    _second(2, temp0=86.0),  # still hot
    _second(3, temp0=70.0),  # cool again: resolves
    _second(4, rate1=10.0),  # miner 1 underhashing: counts...
    _second(4, container=2, state2="sleeping"),
    _second(5, rate1=10.0),
    _second(6, rate1=10.0),  # ...fires on the third scrape
    _second(6, container=2),
    _second(7),  # back: resolves
    _second(8, model="X9"),  # a model the site does not know
    _second(8, model="X9", container=2, rate1=1.0),  # no floor known: never underhashing
    frame(seq=10, ts=NOW + 9, model=["S21", "X9"] * (N // 2)),
]


@pytest.mark.parametrize("per_batch", [1, 3, len(SCENARIO)])
def test_stage1_gives_the_same_partials_alerts_and_findings_packed_as_json(per_batch: int) -> None:
    def replay(encode: Any) -> list[Any]:
        state, seen = Stage1State(), []
        for i in range(0, len(SCENARIO), per_batch):
            batch = [encode(f) for f in SCENARIO[i : i + per_batch]]
            state, out = run(state, batch, topic="telemetry.asic.v1", partition=2)
            assert out.letters == []
            findings = [
                (f.subject, f.context["readings"])
                for _, q in out.site_inputs
                if isinstance(q, QualityIn)
                for f in q.findings
            ]
            alerts = [(a.condition, a.subject, a.state) for a in out.alerts]
            partials = [
                (p.ts_s, p.readings, round(p.mining_w, 6), round(p.mining_reported_w, 6))
                + (round(p.hashrate_ths, 6),)
                for p in out.partials
            ]
            seen.append((out.readings, findings, alerts, partials))
        return seen

    as_json = replay(msgspec.json.encode)
    as_packed = replay(pack)
    assert as_packed == as_json
    fired = [a for _, _, alerts, _ in as_json for a in alerts]
    assert ("miner_over_temperature", "small-S21-00000", "resolved") in fired
    assert ("miner_underhashing", "small-S21-00001", "firing") in fired
    assert ("miner_underhashing", "small-S21-00001", "resolved") in fired


def test_a_quiet_frame_is_never_expanded_to_its_miners() -> None:
    from streams.decisions.alerts import AlertState, alerts_step
    from tests.agents.test_stage1 import SITE

    def boom() -> AsicFrame:
        raise AssertionError("a quiet frame was expanded")

    hot = asic_sums([pack(_second(1, temp0=91.0))], LIMITS)
    quiet = asic_sums([pack(_second(1, container=2, state2="offline"))], LIMITS)
    assert hot is not None and quiet is not None
    (q,) = quiet
    assert isinstance(q, AsicSums) and q.min_hashing_ths == 200.0
    state, alerts = alerts_step(AlertState(site_id="small"), SITE, now_s=NOW, asic_frames=hot)
    assert [a.condition for a in alerts] == ["miner_over_temperature"]
    # miner 0 of container 1 is firing; container 2's miners are not: still quiet
    _, more = alerts_step(
        state, SITE, now_s=NOW, asic_frames=[msgspec.structs.replace(q, full=boom)]
    )
    assert more == []
