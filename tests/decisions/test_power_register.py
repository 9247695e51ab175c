"""The POI meter's energy register travels through both stages and the restater: read in a
second, it is that second's ``SitePower.poi_energy_wh``; never held like power."""

from __future__ import annotations

from schemas.events import SitePower
from schemas.telemetry import MeterFrame
from streams.decisions import power as pw
from streams.decisions.restate import SiteRestater

from .conftest import T0, make_site

SITE = make_site()
IDX = {SITE.site_id: pw.index_site(SITE)}
WATTS = {"m-poi": 3.0e6, "m-ai": 1.5e6, "m-mine": 1.0e6}


def frame(ts: float, seq: int, poi_wh: float | None, source: str = "gw-1") -> MeterFrame:
    return MeterFrame(
        site_id=SITE.site_id,
        source_id=source,
        ts_s=ts,
        seq=seq,
        meter_id=list(WATTS),
        power_w=list(WATTS.values()),
        energy_wh=[poi_wh, 7.0, None],
    )


def test_the_register_is_folded_and_emitted_in_its_own_second_only() -> None:
    frames = [frame(T0 + k, k, 1e6 + k if k % 2 == 0 else None) for k in range(6)]
    pstate, folded = pw.fold_partials(pw.PartialState(), frames, IDX, source_partition="t:0")
    by_s = {p.ts_s: p for p in folded.partials}
    assert by_s[T0].meter_wh == {"m-poi": 1e6, "m-ai": 7.0}  # None: not read
    assert by_s[T0 + 1].meter_wh == {"m-ai": 7.0}
    cstate, out = pw.combine(pw.CombineState(), folded.partials, IDX, now_s=0.0)
    _, rest = pw.close_all(cstate, IDX, now_s=0.0)
    got = {p.ts_s - T0: p.poi_energy_wh for p in [*out.powers, *rest.powers]}
    # Power is held from second to second; the register only where it was read.
    assert got == {0: 1e6, 1: None, 2: 1e6 + 2, 3: None, 4: 1e6 + 4, 5: None}
    assert all(p.poi_meter_w == 3.0e6 for p in [*out.powers, *rest.powers])


def published_with_restater(
    on_time: list[MeterFrame],
) -> tuple[pw.PartialState, dict[int, SitePower], SiteRestater]:
    """Stage 1 and 2 over ``on_time``: the state, the published seconds (from T0), and a
    restater that has seen them."""
    pstate, folded = pw.fold_partials(pw.PartialState(), on_time, IDX, source_partition="t:0")
    cstate, out = pw.combine(pw.CombineState(), folded.partials, IDX, now_s=0.0)
    restater = SiteRestater(index=IDX[SITE.site_id])
    restater.observe(folded.partials)
    restater.closed(out.powers, cstate.sites[SITE.site_id].next_s)
    return pstate, {p.ts_s - T0: p for p in out.powers}, restater


def test_a_late_register_reading_is_restated() -> None:
    # Far enough in that the restater holds every reading second 300 could hold.
    on_time = [frame(T0 + k, k, 1e6 + k) for k in range(320) if k != 300]
    late = frame(T0 + 300, 300, 1e6 + 300)
    pstate, published, restater = published_with_restater(on_time)
    # Second 300 held the meter's power of second 299, but it had no register reading.
    assert published[300].poi_meter_w == 3.0e6 and published[300].poi_energy_wh is None
    _, again = pw.fold_partials(pstate, [late], IDX, source_partition="t:0")
    (partial,) = again.partials
    assert partial.late_key is not None and partial.meter_wh["m-poi"] == 1e6 + 300
    restated = restater.restate(again.partials, now_s=1.0).restatements
    assert [(r.ts_s - T0, r.power.poi_energy_wh) for r in restated] == [(300, 1e6 + 300)]


def sub_frame(ts: float, seq: int, ai_wh: float | None, mining_wh: float | None) -> MeterFrame:
    return MeterFrame(
        site_id=SITE.site_id,
        source_id="gw-1",
        ts_s=ts,
        seq=seq,
        meter_id=list(WATTS),
        power_w=list(WATTS.values()),
        energy_wh=[None, ai_wh, mining_wh],
    )


def test_the_sub_meters_registers_are_emitted_in_their_own_second_only() -> None:
    frames = [
        sub_frame(T0 + k, k, 2e5 + k if k != 1 else None, 3e5 + k if k % 2 == 0 else None)
        for k in range(4)
    ]
    _, folded = pw.fold_partials(pw.PartialState(), frames, IDX, source_partition="t:0")
    cstate, out = pw.combine(pw.CombineState(), folded.partials, IDX, now_s=0.0)
    _, rest = pw.close_all(cstate, IDX, now_s=0.0)
    got = {
        p.ts_s - T0: (p.ai_energy_wh, p.mining_energy_wh, p.poi_energy_wh)
        for p in [*out.powers, *rest.powers]
    }
    assert got == {
        0: (2e5, 3e5, None),
        1: (None, None, None),
        2: (2e5 + 2, 3e5 + 2, None),
        3: (2e5 + 3, None, None),
    }


def test_a_late_sub_meter_register_is_restated() -> None:
    on_time = [sub_frame(T0 + k, k, 2e5 + k, 3e5 + k) for k in range(320) if k != 300]
    late = sub_frame(T0 + 300, 300, 2e5 + 300, 3e5 + 300)
    pstate, published, restater = published_with_restater(on_time)
    assert (published[300].ai_energy_wh, published[300].mining_energy_wh) == (None, None)
    _, again = pw.fold_partials(pstate, [late], IDX, source_partition="t:0")
    restated = restater.restate(again.partials, now_s=1.0).restatements
    assert [(r.ts_s - T0, r.power.ai_energy_wh, r.power.mining_energy_wh) for r in restated] == [
        (300, 2e5 + 300, 3e5 + 300)
    ]
