"""Partial fold and combine: site power by use, lateness, gaps and reconciliation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import msgspec
import pytest

from schemas.events import SitePowerPartial
from schemas.telemetry import AsicFrame, GpuFrame
from streams.decisions.power import (
    CombineConfig,
    CombineState,
    Frame,
    Gap,
    PartialState,
    SiteIndex,
    combine,
    fold_partials,
)

from .conftest import T0
from .helpers import asics, gpus, meters


def fold(
    index: SiteIndex, frames: Iterable[Frame], state: PartialState | None = None, lateness: int = 2
):
    return fold_partials(
        state or PartialState(), frames, {"s1": index}, source_partition="t:0", lateness_s=lateness
    )


def partial(ts: int, part: str = "t:0", readings: int = 1, **kw: object) -> SitePowerPartial:
    return SitePowerPartial(
        site_id="s1",
        ts_s=ts,
        source_partition=part,
        readings=readings,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("node", "powers", "ai_w"),
    [
        # 4 x 700 W + one h100 node's 1,000 W.
        ("s1-h100-00000", [700.0] * 4, 3_800.0),
        ("s1-l40-00000", [300.0, 250.0], 950.0),
        # Unknown pool: node-weighted mean overhead (2 x 1,000 + 1 x 400) / 3 = 800 W.
        ("elsewhere-7", [100.0], 900.0),
        # An empty frame names no node: nothing to add.
        ("s1-h100-00001", [], 0.0),
    ],
)
def test_gpu_frame_adds_node_overhead(
    index: SiteIndex, node: str, powers: list[float], ai_w: float
) -> None:
    _, out = fold(index, [gpus(T0 + 0.4, node, powers)])
    (p,) = out.partials
    assert p.ts_s == T0
    assert p.ai_w == pytest.approx(ai_w)
    assert p.readings == len(powers)


def test_node_overhead_follows_a_source_whose_nodes_change(index: SiteIndex) -> None:
    """The overhead of a source's node column is remembered; a changed column is not."""

    def frame(sec: int, nodes: list[str]) -> GpuFrame:
        return msgspec.structs.replace(
            gpus(T0 + sec + 0.4, "rack-1", [500.0] * len(nodes), seq=sec),
            node_id=nodes,
            gpu_index=list(range(len(nodes))),
        )

    a, b = "s1-h100-00000", "s1-l40-00000"
    steps = [
        ([a, a], 1_000.0),  # one h100 node
        ([a, a], 1_000.0),  # the same column again: remembered
        ([a, b], 1_400.0),  # an l40 node joins the same source: recomputed
        (["elsewhere-1"], 800.0),  # unknown pool: the mean
    ]
    for sec, (nodes, overhead) in enumerate(steps):
        _, out = fold(index, [frame(sec, nodes)])
        (p,) = out.partials
        assert p.ai_w == pytest.approx(500.0 * len(nodes) + overhead)


class _NoScanDict(dict[str, float]):
    """A node cache that fails a test if anything walks all of it."""

    def keys(self) -> NoReturn:
        raise AssertionError("the node cache was scanned")

    def __iter__(self) -> NoReturn:
        raise AssertionError("the node cache was scanned")


def test_a_new_node_column_looks_up_its_own_nodes_only(index: SiteIndex) -> None:
    """A source whose node column changed looks up only that column's nodes: the cache holds
    every node of the site (tens of thousands at 400 MW), and walking it for every changed
    column cost 600 us a frame, half of stage 1 in the first second of a worker."""
    cache = _NoScanDict({f"s1-h100-{i:05d}": 1_000.0 for i in range(1, 50)})
    scanned = msgspec.structs.replace(index, node_cache=cache)
    nodes = ["s1-h100-00000", "s1-h100-00001", "s1-l40-00000"]
    frame = msgspec.structs.replace(
        gpus(T0 + 0.4, "rack-1", [500.0] * 3), node_id=nodes, gpu_index=[0, 1, 2]
    )
    _, out = fold(scanned, [frame])
    (p,) = out.partials
    assert p.ai_w == pytest.approx(1_500.0 + 1_000.0 + 1_000.0 + 400.0)
    assert {"s1-h100-00000", "s1-l40-00000"} <= dict.keys(cache)


@pytest.mark.parametrize(
    ("models", "hashrates", "powers", "mining_w", "reported_w", "unknown"),
    [
        (["S19", "S19"], [100.0, 90.0], [3_100.0, 2_900.0], 6_000.0, 6_000.0, {}),
        # Stock firmware: 30 J/TH x (100 + 50) TH/s = 4,500 W estimated.
        (["S19", "S19"], [100.0, 50.0], [None, None], 4_500.0, 0.0, {}),
        # Mixed: 3,000 reported + 30 x 80 = 2,400 estimated.
        (["S19", "S19"], [100.0, 80.0], [3_000.0, None], 5_400.0, 3_000.0, {}),
        # Two models, both estimated: 30 x 100 + 15 x 200.
        (["S19", "S21"], [100.0, 200.0], [None, None], 6_000.0, 0.0, {}),
        (["S19", "S21", "S21"], [100.0, 200.0, 100.0], [None, 3_050.0, None], 7_550.0, 3_050.0, {}),
        # A model the site does not know: no estimate, counted.
        (["S9", "S9"], [13.0, 13.0], [None, 1_300.0], 1_300.0, 1_300.0, {"S9": 1}),
        (["S9", "S19"], [13.0, 100.0], [None, None], 3_000.0, 0.0, {"S9": 1}),
        # Sleeping miners report 0 TH/s: estimated 0 W.
        (["S21"], [0.0], [None], 0.0, 0.0, {}),
    ],
)
def test_asic_power_reported_and_estimated(
    index: SiteIndex,
    models: list[str],
    hashrates: list[float],
    powers: list[float | None],
    mining_w: float,
    reported_w: float,
    unknown: dict[str, int],
) -> None:
    _, out = fold(index, [asics(T0, models, hashrates, powers)])
    (p,) = out.partials
    assert p.mining_w == pytest.approx(mining_w)
    assert p.mining_reported_w == pytest.approx(reported_w)
    assert p.hashrate_ths == pytest.approx(sum(hashrates))
    assert out.unknown_model_readings == unknown


def test_fold_is_cumulative_and_dedupes(index: SiteIndex) -> None:
    f1 = gpus(T0, "s1-l40-00000", [300.0, 300.0], seq=1)
    state, out1 = fold(index, [f1, f1])  # redelivered frame
    assert out1.duplicate_frames == 1
    assert out1.partials[0].readings == 2
    state, out2 = fold(index, [gpus(T0 + 0.9, "s1-l40-00000", [100.0], seq=2)], state)
    # Same second, same partition: the new partial carries the running total.
    assert out2.partials[0].readings == 3
    assert out2.partials[0].ai_w == pytest.approx(300 + 300 + 400 + 100 + 400)
    assert out1.partials[0].readings == 2  # earlier output not mutated


def test_meter_later_scrape_wins_and_unknown_site(index: SiteIndex) -> None:
    frames = [
        meters(T0, {"m-poi": 100.0, "m-ai": 30.0}, seq=1),
        meters(T0 + 0.5, {"m-poi": 110.0}, seq=2),
        meters(T0, {"m-poi": 1.0}, site="nowhere"),
    ]
    _, out = fold(index, frames)
    (p,) = out.partials
    assert p.meter_w == {"m-poi": 110.0, "m-ai": 30.0}
    assert p.readings == 3
    assert out.unknown_site_frames == {"nowhere": 1}


@pytest.mark.parametrize(
    ("late_ts", "is_late"),
    [
        (T0 + 8, False),  # 10 - 2: still retained
        (T0 + 7, True),  # more than 2 s behind the newest second
    ],
)
def test_fold_late_frames_come_back(index: SiteIndex, late_ts: int, is_late: bool) -> None:
    state, _ = fold(index, [gpus(t, "s1-l40-00000", [1.0], seq=t) for t in range(T0 + 6, T0 + 11)])
    state, out = fold(index, [gpus(late_ts, "s1-l40-00000", [5.0, 5.0], seq=99)], state)
    if is_late:
        # Counted late, and sent alone (keyed) for the restatement of its closed second.
        assert [(p.ts_s, p.readings, p.late_key) for p in out.partials] == [
            (late_ts, 2, "g:s1-l40-00000:99")
        ]
        assert [(x.ts_s, x.readings, x.newest_s) for x in out.late] == [(late_ts, 2, T0 + 10)]
    else:
        assert out.late == []
        assert out.partials[0].readings == 3


def run_combine(index: SiteIndex, batches: list[list[SitePowerPartial]], lateness: int = 2):
    state = CombineState()
    outs = []
    for b in batches:
        state, out = combine(
            state, b, {"s1": index}, now_s=0.0, config=CombineConfig(lateness_s=lateness)
        )
        outs.append(out)
    return state, outs


@pytest.mark.parametrize(
    ("meter_w", "ai", "mining", "overhead", "flags"),
    [
        # POI reported: overhead = 100 - 30 - 60 kW.
        ({"m-poi": 100e3, "m-ai": 30e3, "m-mine": 60e3}, 30e3, 60e3, 10e3, []),
        # No POI: overhead model 0 + 5% x (30 + 60) kW = 4.5 kW.
        (
            {"m-ai": 30e3, "m-mine": 60e3},
            30e3,
            60e3,
            4.5e3,
            ["meter_missing:m-poi", "poi_meter_missing"],
        ),
        # No sub-meters: device sums (31 kW GPUs, 61 kW ASICs) and POI 100 kW -> 8 kW.
        (
            {"m-poi": 100e3},
            31e3,
            61e3,
            8e3,
            [
                "meter_missing:m-ai",
                "meter_missing:m-mine",
                "ai_from_devices",
                "mining_from_devices",
            ],
        ),
        ({"m-poi": 85e3, "m-ai": 30e3, "m-mine": 60e3}, 30e3, 60e3, -5e3, ["overhead_negative"]),
    ],
)
def test_site_power_by_use(
    index: SiteIndex,
    meter_w: dict[str, float],
    ai: float,
    mining: float,
    overhead: float,
    flags: list[str],
) -> None:
    p = partial(T0, readings=5, ai_w=31e3, mining_w=61e3, mining_reported_w=61e3, meter_w=meter_w)
    _, (out,) = run_combine(index, [[p, partial(T0 + 5)]])
    sp = out.powers[0]
    assert (sp.ai_w, sp.mining_w, sp.overhead_w) == pytest.approx((ai, mining, overhead))
    assert sp.flags == flags
    assert sp.contract_w == 120e3
    assert sp.surplus_w == pytest.approx(120e3 - ai - overhead)
    assert sp.total_w == pytest.approx(ai + mining + overhead)
    assert sp.poi_meter_w == meter_w.get("m-poi")


@pytest.mark.parametrize(
    ("device_mining", "reported", "meter", "within", "fraction"),
    [
        (60e3, 60e3, 61e3, True, 1e3 / 61e3),
        (60e3, 20e3, 61.8e3, True, 1.8e3 / 61.8e3),
        (60e3, 0.0, 70e3, False, 10e3 / 70e3),
        (60e3, 60e3, 0.0, False, float("inf")),
    ],
)
def test_reconciliation(
    index: SiteIndex,
    device_mining: float,
    reported: float,
    meter: float,
    within: bool,
    fraction: float,
) -> None:
    p = partial(
        T0,
        mining_w=device_mining,
        mining_reported_w=reported,
        meter_w={"m-poi": 200e3, "m-ai": 30e3, "m-mine": meter},
    )
    _, (out,) = run_combine(index, [[p, partial(T0 + 3)]])
    (rec,) = out.reconciliations  # no AI devices reported: only mining is reconciled
    assert rec.use == "mining"
    assert rec.within_tolerance is within
    assert rec.difference_fraction == pytest.approx(fraction)
    assert rec.estimated_w == pytest.approx(device_mining - reported)


def test_partials_of_partitions_merge_and_replace(index: SiteIndex) -> None:
    batches = [
        [
            partial(T0, "t:0", readings=5, ai_w=10.0),
            partial(T0, "t:1", readings=3, mining_w=7.0),
            partial(T0, "t:0", readings=8, ai_w=16.0),  # cumulative: replaces the first
        ],
        [partial(T0 + 3, "t:0")],
    ]
    _, outs = run_combine(index, batches)
    assert outs[0].powers == []
    (sp,) = outs[1].powers
    assert (sp.readings, sp.ai_w, sp.mining_w) == (11, 16.0, 7.0)


@pytest.mark.parametrize(
    ("arrivals", "emitted", "late"),
    [
        # Lateness 2: newest T0+3 closes T0 only; T0+1 arriving after it is still in time.
        ([[0, 3], [1]], [0], []),
        ([[0, 3], [1], [6]], [0, 1, 3], []),
        # T0+4 makes T0+1 close; a reading for T0+1 afterwards is late, never merged.
        ([[0, 1, 4], [1]], [0, 1], [(1, 1)]),
        # T0+5 closes T0+2 with no readings (a gap): readings for it afterwards are late.
        ([[0, 1, 5], [1, 2]], [0, 1], [(1, 1), (2, 1)]),
        # Out of order inside one batch before anything closed: the first second moves back.
        ([[5, 2, 9]], [2, 5], []),
    ],
)
def test_lateness(
    index: SiteIndex, arrivals: list[list[int]], emitted: list[int], late: list[tuple[int, int]]
) -> None:
    # Every arrival is a fresh partition, so late readings are all new.
    n = 0
    batches = []
    for batch in arrivals:
        b = []
        for s in batch:
            n += 1
            b.append(partial(T0 + s, f"t:{n}"))
        batches.append(b)
    _, outs = run_combine(index, batches)
    assert [p.ts_s - T0 for o in outs for p in o.powers] == emitted
    assert [(x.ts_s - T0, x.readings) for o in outs for x in o.late] == late


def test_late_cumulative_partial_counts_only_new_readings(index: SiteIndex) -> None:
    state, _ = run_combine(index, [[partial(T0, readings=5), partial(T0 + 3)]])
    cfg = CombineConfig(lateness_s=2)
    state, out = combine(state, [partial(T0, readings=8)], {"s1": index}, now_s=0.0, config=cfg)
    assert [(x.ts_s, x.readings) for x in out.late] == [(T0, 3)]
    state, out = combine(state, [partial(T0, readings=8)], {"s1": index}, now_s=0.0, config=cfg)
    assert out.late == []  # redelivered: nothing new
    state, out = combine(state, [partial(T0 + 6)], {"s1": index}, now_s=0.0, config=cfg)
    # T0+3 closes now and carries the 3 late readings.
    assert [(p.ts_s, p.late_readings) for p in out.powers] == [(T0 + 3, 3)]


def test_gap_across_15_minute_boundary(index: SiteIndex) -> None:
    assert T0 % 900 == 0
    seconds = [T0 - 5, T0 - 4, T0 - 3, T0 + 2, T0 + 3, T0 + 10]
    _, outs = run_combine(index, [[partial(s) for s in seconds]], lateness=0)
    (out,) = outs
    assert out.gaps == [
        Gap(site_id="s1", start_s=T0 - 2, end_s=T0 + 2),
        Gap(site_id="s1", start_s=T0 + 4, end_s=T0 + 10),
    ]
    by_ts = {p.ts_s: p for p in out.powers}
    assert sorted(by_ts) == [T0 - 5, T0 - 4, T0 - 3, T0 + 2, T0 + 3]
    assert "gap" in by_ts[T0 + 2].flags and "gap" not in by_ts[T0 + 3].flags
    # Nothing interpolated: the interval before the boundary has 3 seconds, after it 2.
    assert sum(1 for s in by_ts if s < T0) == 3
    assert sum(1 for s in by_ts if s >= T0) == 2


def test_idle_close_reports_silent_site(index: SiteIndex) -> None:
    cfg = CombineConfig(lateness_s=2, idle_close_s=10.0)
    state, out = combine(CombineState(), [partial(T0)], {"s1": index}, now_s=T0 + 1.0, config=cfg)
    assert out.powers == []
    state, out = combine(state, [], {"s1": index}, now_s=T0 + 30.5, config=cfg)
    # Closes every second <= now - idle = T0 + 20: T0 emitted, T0+1..T0+20 a gap.
    assert [p.ts_s for p in out.powers] == [T0]
    assert out.gaps == [Gap(site_id="s1", start_s=T0 + 1, end_s=T0 + 21)]


def test_unknown_site_in_combine_names_it(index: SiteIndex) -> None:
    p = SitePowerPartial(site_id="zz", ts_s=1, source_partition="t:0")
    with pytest.raises(KeyError, match="'zz'"):
        combine(CombineState(), [p], {"s1": index}, now_s=0.0)


@pytest.mark.parametrize("codec", [msgspec.json, msgspec.msgpack])
def test_states_round_trip(index: SiteIndex, codec: object) -> None:
    frames: list[Frame] = [
        gpus(T0, "s1-l40-00000", [1.0], seq=1),
        asics(T0 + 1, ["S19"], [90.0], [None]),
    ]
    pstate, _ = fold(index, frames)
    restored = codec.decode(codec.encode(pstate), type=PartialState)  # type: ignore[attr-defined]
    assert restored == pstate
    cstate, _ = run_combine(index, [[partial(T0), partial(T0 + 1), partial(T0 + 4)]])
    restored_c = codec.decode(codec.encode(cstate), type=CombineState)  # type: ignore[attr-defined]
    assert restored_c == cstate
    # Continuing from the restored state gives the same result.
    nxt = [partial(T0 + 1, "t:9"), partial(T0 + 7)]
    a = combine(cstate, nxt, {"s1": index}, now_s=1.0)[1]
    b = combine(restored_c, nxt, {"s1": index}, now_s=1.0)[1]
    assert a == b


def test_asic_frame_type_is_used(index: SiteIndex) -> None:
    f = asics(T0, ["S21"], [200.0], [None])
    assert isinstance(f, AsicFrame)
    _, out = fold(index, [f])
    assert out.partials[0].mining_w == pytest.approx(3_000.0)


@pytest.mark.parametrize(
    ("idle", "arrivals", "emitted", "late"),
    [
        # Partition b lags: a racing ahead to T0+9 cannot close T0+1 until b moves past it.
        (20, [[("a", 0), ("b", 0), ("a", 9)], [("b", 1)], [("b", 9)]], [0, 1], []),
        # b stalls: once it is more than partition_idle_s behind the newest second it no
        # longer holds seconds open, and what it sends afterwards for closed seconds is late.
        (5, [[("a", 0), ("b", 0), ("a", 3)], [("a", 9)], [("b", 1)]], [0, 3], [(1, 1)]),
    ],
    ids=["lagging-partition-holds", "stalled-partition-released"],
)
def test_partition_watermarks(
    index: SiteIndex,
    idle: int,
    arrivals: list[list[tuple[str, int]]],
    emitted: list[int],
    late: list[tuple[int, int]],
) -> None:
    cfg = CombineConfig(lateness_s=2, partition_watermarks=True, partition_idle_s=idle)
    state = CombineState()
    powers: list[int] = []
    lates: list[tuple[int, int]] = []
    for batch in arrivals:
        parts = [partial(T0 + s, f"t:{src}") for src, s in batch]
        state, out = combine(state, parts, {"s1": index}, now_s=0.0, config=cfg)
        powers += [p.ts_s - T0 for p in out.powers]
        lates += [(x.ts_s - T0, x.readings) for x in out.late]
    assert powers == emitted
    assert lates == late


def test_max_open_bounds_what_a_lagging_partition_holds(index: SiteIndex) -> None:
    cfg = CombineConfig(
        lateness_s=2, partition_watermarks=True, partition_idle_s=1000, max_open_s=5
    )
    state = CombineState()
    # b stays at T0 while a runs to T0+9: without the bound nothing would close.
    parts = [partial(T0, "t:b"), *(partial(T0 + s, "t:a") for s in range(10))]
    state, out = combine(state, parts, {"s1": index}, now_s=0.0, config=cfg)
    assert [p.ts_s - T0 for p in out.powers] == [0, 1, 2, 3]
    assert len(state.sites["s1"].open) == 6  # T0+4 .. T0+9: the bound, not the lag
    state, out = combine(state, [partial(T0 + 1, "t:b")], {"s1": index}, now_s=0.0, config=cfg)
    assert [(x.ts_s - T0, x.readings) for x in out.late] == [(1, 1)]
