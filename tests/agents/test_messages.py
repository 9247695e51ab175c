"""Internal messages, state codec, command splitting and grid routing."""

from __future__ import annotations

import msgspec
import pytest

from schemas.events import MinerCommand
from schemas.grid import DispatchSignal, FrequencySample, PriceSignal
from streams.agents.app import split_command
from streams.agents.messages import (
    DispatchIn,
    FrequencyIn,
    HashpriceIn,
    LateIn,
    PriceIn,
    QualityIn,
    Stage1State,
    TickIn,
    decode_input,
    decode_state,
    encode,
)
from streams.agents.routing import grid_targets
from streams.decisions.alerts import QualityFinding
from streams.decisions.breakeven import Hashprice
from streams.decisions.power import LateReadings, PartialState
from tests.agents.helpers import small_site

PRICE = PriceSignal(
    market="ERCOT",
    settlement_point="LZ_WEST",
    kind="rt",
    interval_start_s=0.0,
    interval_end_s=900.0,
    price_usd_per_mwh=99.5,
)


def dispatch(site_id: str | None) -> DispatchSignal:
    return DispatchSignal(
        event_id="d1", site_id=site_id, kind="ecrs", start_s=1.0, response_deadline_s=600.0
    )


@pytest.mark.parametrize(
    "item",
    [
        PriceIn(signal=PRICE),
        DispatchIn(signal=dispatch("small")),
        FrequencyIn(signal=FrequencySample(source_id="pmu", ts_s=5.0, freq_hz=59.6)),
        HashpriceIn(signal=Hashprice(ts_s=1.0, usd_per_ph_day=42.0)),
        TickIn(wall_s=123.5),
        LateIn(
            items=[
                LateReadings(site_id="s", ts_s=1, source_partition="t:0", readings=3, newest_s=9)
            ]
        ),
        QualityIn(
            findings=[
                QualityFinding(
                    site_id="s", subject="x", ts_s=1.0, ok=False, message="m", context={"n": 1}
                )
            ]
        ),
    ],
)
def test_site_inputs_round_trip(item: object) -> None:
    assert decode_input(encode(item)) == item  # type: ignore[arg-type]


def test_stage1_state_round_trips_with_its_sets() -> None:
    state = Stage1State(
        partial=PartialState(seen={"s": {7: {"g:a:1", "g:b:2"}}}, newest_s={"s": 7})
    )
    assert decode_state(encode(state), Stage1State) == state


@pytest.mark.parametrize(
    ("n", "limit", "parts"), [(0, 10, 1), (10, 10, 1), (11, 10, 2), (25, 10, 3)]
)
def test_split_command(n: int, limit: int, parts: int) -> None:
    cmd = MinerCommand(
        command_id="e/1",
        site_id="s",
        event_id="e",
        issued_at_s=1.0,
        action="sleep",
        miner_ids=[f"m{i}" for i in range(n)],
        priority=0,
        deadline_s=2.0,
    )
    out = split_command(cmd, limit)
    assert len(out) == parts
    assert [m for c in out for m in c.miner_ids] == cmd.miner_ids
    assert all(len(c.miner_ids) <= limit for c in out)
    if parts > 1:
        assert [c.command_id for c in out] == [f"e/1.{k}" for k in range(parts)]
    else:
        assert out == [cmd]


SMALL = small_site()
OTHER = msgspec.structs.replace(SMALL, site_id="other", settlement_point="HB_NORTH")
SITES = {"small": SMALL, "other": OTHER}


@pytest.mark.parametrize(
    ("signal", "targets"),
    [
        (PRICE, ["small"]),
        (msgspec.structs.replace(PRICE, settlement_point="HB_HOUSTON"), []),
        (dispatch("other"), ["other"]),
        (dispatch(None), ["other", "small"]),
        (dispatch("unknown"), []),
        (FrequencySample(source_id="pmu", ts_s=1.0, freq_hz=60.0), ["other", "small"]),
    ],
)
def test_grid_targets(signal: object, targets: list[str]) -> None:
    got = grid_targets(signal, SITES)  # type: ignore[arg-type]
    assert [s for s, _ in got] == targets
    assert all(item.signal is signal for _, item in got)
