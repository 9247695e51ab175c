"""Stage 1 without Kafka: decode, dead-letter, fold, late readings, ASIC checks."""

from __future__ import annotations

import base64
import time

import msgspec
import pytest

from schemas.telemetry import AsicFrame, GpuFrame
from schemas.validation import Limits
from streams.agents.messages import LateIn, QualityIn, Stage1State
from streams.agents.sites import SiteEntry
from streams.agents.stage1 import RawMessage, process_partition
from streams.decisions.fleet import fleet_roster
from streams.decisions.power import index_site
from tests.agents.helpers import small_site

SITE = small_site()
SITES = {SITE.site_id: SiteEntry(config=SITE, index=index_site(SITE), fleet=fleet_roster(SITE))}
NOW = float(int(time.time()))


def gpu(ts: float, seq: int, *, site: str = "small", watts: float = 500.0) -> bytes:
    f = GpuFrame(
        site_id=site,
        source_id="rack-1",
        ts_s=ts,
        seq=seq,
        node_id=["small-train-00000"] * 8,
        gpu_index=list(range(8)),
        power_w=[watts] * 8,
        energy_mj=[None] * 8,
    )
    return msgspec.json.encode(f)


def asic(ts: float, seq: int, *, model: str = "S21", temp: float = 70.0) -> bytes:
    f = AsicFrame(
        site_id="small",
        source_id="c-1",
        ts_s=ts,
        seq=seq,
        miner_id=["small-S21-00000", "small-S21-00001"],
        model=[model, model],
        hashrate_ths=[200.0, 200.0],
        power_w=[None, None],
        temp_c=[temp, 70.0],
        fan_rpm=[4000, 4000],
        state=["hashing", "hashing"],
    )
    return msgspec.json.encode(f)


def run(
    state: Stage1State,
    values: list[bytes | None],
    topic: str = "telemetry.gpu.v1",
    partition: int = 4,
):
    msgs = [RawMessage(offset=100 + i, key=b"k", value=v) for i, v in enumerate(values)]
    return process_partition(
        state,
        msgs,
        SITES,
        base_topic=topic,
        topic=f"ns.{topic}",
        partition=partition,
        limits=Limits(now_s=NOW),
        lateness_s=2,
        consumer="test",
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"{not json", "not_json"),
        (b'{"v": 1, "site_id": "small"}', "schema"),
        (gpu(NOW, 1).replace(b'"v":1', b'"v":9'), "version"),
        (gpu(NOW, 1, watts=-5.0), "validation"),
        (gpu(NOW, 1, site="nowhere"), "unknown_site"),
        (None, "schema"),
    ],
)
def test_bad_messages_become_dead_letters_with_their_bytes(value: bytes | None, kind: str) -> None:
    _, out = run(Stage1State(), [gpu(NOW, 1), value])
    assert out.accepted == 1 and out.rejected == {kind: 1}
    (letter,) = out.letters
    assert letter.kind == kind and letter.reason
    assert base64.b64decode(letter.value_b64) == (value or b"")
    assert (letter.source_topic, letter.partition, letter.offset) == ("ns.telemetry.gpu.v1", 4, 101)


def test_frames_fold_into_cumulative_partials_of_the_partition() -> None:
    state, out = run(Stage1State(), [gpu(NOW, 1), gpu(NOW, 1), gpu(NOW + 0.5, 2, watts=600.0)])
    (p,) = out.partials
    assert p.source_partition == "telemetry.gpu.v1:4" and p.ts_s == int(NOW)
    assert out.duplicate_frames == 1 and out.readings == 24
    # 8 x 500 + 8 x 600 W of GPUs, plus one train node's 1500 W overhead per frame
    assert p.ai_w == 8 * 500.0 + 8 * 600.0 + 2 * 1500.0 and p.readings == 16
    state, out = run(state, [gpu(NOW, 3)])
    assert out.partials[0].readings == 24  # running total, replaces the earlier partial


def test_a_frame_for_a_closed_second_comes_back_as_late_for_its_site() -> None:
    state, _ = run(Stage1State(), [gpu(NOW + 10, 1)])
    _, out = run(state, [gpu(NOW, 2)])
    # The frame goes on alone, keyed, to restate its closed second (streams.decisions.restate).
    assert [(p.ts_s, p.late_key) for p in out.partials] == [(int(NOW), "g:rack-1:2")]
    ((site, late),) = out.site_inputs
    assert site == "small" and isinstance(late, LateIn)
    assert [(x.ts_s, x.readings) for x in late.items] == [(int(NOW), 8)]


@pytest.mark.parametrize(
    ("model", "temp", "finding", "alert"),
    [
        ("S21", 70.0, None, None),
        ("S21", 91.0, None, "miner_over_temperature"),
        ("X9", 70.0, "unknown_model:X9", None),
    ],
)
def test_asic_checks(model: str, temp: float, finding: str | None, alert: str | None) -> None:
    state, out = run(
        Stage1State(),
        [asic(NOW, 1, model=model, temp=temp)],
        topic="telemetry.asic.v1",
        partition=2,
    )
    subjects = [
        f.subject for _, q in out.site_inputs if isinstance(q, QualityIn) for f in q.findings
    ]
    assert subjects == ([finding] if finding else [])
    assert [a.condition for a in out.alerts] == ([alert] if alert else [])
    if alert:
        assert out.alerts[0].subject == "small-S21-00000" and out.alerts[0].state == "firing"
        _, again = run(
            state,
            [asic(NOW + 1, 2, model=model, temp=temp)],
            topic="telemetry.asic.v1",
            partition=2,
        )
        assert again.alerts == []  # still firing: not sent twice


def test_the_state_remembers_the_next_offset_even_for_a_batch_of_dead_letters() -> None:
    state, _ = run(Stage1State(), [gpu(NOW, 1), gpu(NOW, 2)])
    assert state.next_offset == 102
    state, out = run(state, [b"{not json"])
    assert state.next_offset == 101 and out.rejected == {"not_json": 1}
