"""Seconds closed as complete when sources poll at uneven phases: late readings and close
delay with the expectation over one second and over ``complete_window_s``.

    PYTHONPATH=. .venv/bin/python -m tests.decisions.sparse_complete
"""

from __future__ import annotations

import msgspec

from streams.decisions.power import (
    CombineConfig,
    CombineState,
    PartialState,
    combine,
    fold_partials,
    index_site,
)
from tests.decisions.conftest import T0, make_site
from tests.decisions.polling import PolledSource, device_site, poll

CFG = CombineConfig(lateness_s=2, partition_watermarks=True, close_complete=True)
PHASES = ([0, 0, 0, 0], [0, 0, 1, 3], [0, 1, 2, 3, 4], [0, 0, 0, 2])


def measure(phases: list[int], window_s: int, seconds: int = 600) -> tuple[int, int, float]:
    """(late readings, readings, mean close delay in event seconds) of racks of ten miners
    polled every 5 s at ``phases``, frames arriving one by one in stamp order."""
    sites = {"s1": index_site(device_site(make_site(), asic_staleness_s=15.0))}
    cfg = msgspec.structs.replace(CFG, complete_window_s=window_s)
    racks = [PolledSource(f"r{i}", 3000.0, 5, p, 10) for i, p in enumerate(phases)]
    by_second = poll(racks, T0, seconds, jitter_s=0.3)
    ps, cs = PartialState(), CombineState()
    late, delays = 0, []
    for frames in by_second:
        for f in frames:
            ps, folded = fold_partials(ps, [f], sites, source_partition="t:0")
            cs, out = combine(cs, folded.partials, sites, now_s=0.0, config=cfg)
            late += sum(x.readings for x in (*folded.late, *out.late))
            delays += [f.ts_s - p.ts_s for p in out.powers]
    readings = sum(len(f.power_w) for fs in by_second for f in fs)
    return late, readings, sum(delays) / len(delays)


def main() -> None:
    print("phases           window  late readings  mean close delay (event s)")
    for phases in PHASES:
        for window in (1, CFG.complete_window_s):
            late, n, delay = measure(phases, window)
            print(f"{str(phases):<16} {window:>6} {late:>7,} of {n:,} {delay:>10.2f}")


if __name__ == "__main__":
    main()
