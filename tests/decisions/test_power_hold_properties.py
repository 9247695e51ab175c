"""Properties of sample-and-hold beyond energy (``test_power_hold.py`` has the energy one):
hashrate does not depend on the polling period either, and a source past its staleness is
counted stale, never read as zero (docs/cadence.md)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.decisions.power import index_site
from tests.decisions.conftest import T0, make_site
from tests.decisions.polling import PolledSource, device_site, poll, run

HASHRATE_THS = 100.0
"""Per miner, as ``tests.decisions.polling.poll`` reports it."""


@settings(max_examples=40, deadline=None)
@given(
    racks=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=5),
            st.sampled_from([1, 5, 60]),
            st.integers(min_value=0, max_value=59),
        ),
        min_size=1,
        max_size=4,
    ),
    seconds=st.integers(min_value=60, max_value=400),
    cut=st.integers(min_value=0, max_value=120),
    jitter=st.floats(min_value=0.0, max_value=0.9),
)
def test_hashrate_does_not_depend_on_the_polling_period(
    racks: list[tuple[int, int, int]], seconds: int, cut: int, jitter: float
) -> None:
    """TH-seconds over a window of closed seconds equal the 1 s truth within the energy
    bound of docs/cadence.md applied to hashrate: |H - truth| < sum of 2 x period x TH/s."""
    index = index_site(device_site(make_site(), asic_staleness_s=180.0))
    sources = [
        PolledSource(f"rack-{i}", 3000.0, period, phase % period, miners)
        for i, (miners, period, phase) in enumerate(racks)
    ]
    powers = run(index, poll(sources, T0, cut + seconds, jitter_s=jitter))
    window = [p for p in powers if T0 + cut <= p.ts_s < T0 + cut + seconds]
    th_s = math.fsum(p.hashrate_ths for p in window)
    rate = math.fsum(s.miners * HASHRATE_THS for s in sources)
    bound = math.fsum(2 * s.period_s * s.miners * HASHRATE_THS for s in sources)
    assert abs(th_s - rate * seconds) <= bound + 1e-6
    if cut >= 60 and seconds > 120:  # clear of the input's ends: exact
        inner = [p for p in window if p.ts_s < T0 + cut + seconds - 60]
        assert math.fsum(p.hashrate_ths for p in inner) == rate * (seconds - 60)


@settings(max_examples=60, deadline=None)
@given(
    racks=st.lists(
        st.tuples(
            st.floats(min_value=100.0, max_value=5000.0),
            st.sampled_from([1, 5, 60]),
            st.integers(min_value=0, max_value=59),
            st.integers(min_value=0, max_value=200),
            st.integers(min_value=0, max_value=200),
        ),
        min_size=1,
        max_size=4,
    ),
    staleness=st.sampled_from([3.0, 15.0, 180.0]),
)
def test_a_source_past_its_staleness_is_counted_stale_never_zero(
    racks: list[tuple[float, int, int, int, int]], staleness: float
) -> None:
    """Each source loses its polls for a while (an outage of random start and length). Every
    closed second counts as stale exactly the sources whose last reading is at least the
    staleness old, sums only the others (a stale source adds neither its old value nor a
    zero reading), and a second where no source is fresh is not emitted at all (a gap)."""
    seconds = 300
    index = index_site(device_site(make_site(), asic_staleness_s=staleness))
    sources = [
        PolledSource(f"rack-{i}", w, period, phase % period)
        for i, (w, period, phase, _, _) in enumerate(racks)
    ]
    lost = frozenset(
        (s.source_id, k)
        for s, (_, _, _, start, length) in zip(sources, racks, strict=True)
        for k in range(start, start + length)
    )
    frames = poll(sources, T0, seconds, missed=lost)
    polled = {
        s.source_id: [k for k, fs in enumerate(frames) for f in fs if f.source_id == s.source_id]
        for s in sources
    }
    by_s = {p.ts_s - T0: p for p in run(index, frames)}
    if not any(polled.values()):
        assert by_s == {}
        return
    first = min(k for ks in polled.values() for k in ks)
    last = max(k for ks in polled.values() for k in ks)
    for k in range(first, last + 1):
        fresh_w, stale = 0.0, 0
        for s in sources:
            before = [t for t in polled[s.source_id] if t <= k]
            if not before:
                continue  # not heard of yet: neither fresh nor stale
            if k - before[-1] < staleness:
                fresh_w += s.power_w
            else:
                stale += 1
        if fresh_w == 0.0:
            assert k not in by_s, f"second {k}: no fresh source, yet emitted {by_s[k]}"
            continue
        p = by_s[k]
        assert p.stale_sources == stale, k
        assert math.isclose(p.mining_w, fresh_w, rel_tol=1e-12), k
