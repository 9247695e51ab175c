"""Benchmark: throughput of the partial fold on one core.

Run: ``taskset -c 0 .venv/bin/python -m tests.bench.bench_power_fold``.

One second of a 400 MW site: 29,000 GPU node frames of 8 GPUs (232,000 readings), 450
ASIC rack frames of 100 miners (45,000, half on stock firmware with no wattage) and one
meter frame of 300 meters.
"""

from __future__ import annotations

import time

from schemas.site import AsicModel, SiteConfig
from streams.decisions.power import Frame, PartialState, fold_partials, index_site, readings_of
from tests.decisions.conftest import T0, make_site
from tests.decisions.helpers import asics, gpus, meters


def one_second(ts: int) -> list[Frame]:
    frames: list[Frame] = [
        gpus(ts + 0.1, f"s1-h100-{n:05d}", [650.0 + n % 7] * 8, seq=ts) for n in range(29_000)
    ]
    for r in range(450):
        stock = r % 2 == 0
        frames.append(
            asics(
                ts + 0.2,
                ["S21"] * 100,
                [195.0 + (r % 5)] * 100,
                [None] * 100 if stock else [3_400.0] * 100,
                seq=ts * 1000 + r,
            )
        )
    frames.append(meters(ts + 0.3, {f"m{i}": 1e5 for i in range(300)}, seq=ts))
    return frames


def fold_rate(seconds: int = 3) -> float:
    site: SiteConfig = make_site()
    site.asic_models.append(AsicModel(model="S21x", count=1, hashrate_ths=1.0, j_per_th=1.0))
    sites = {"s1": index_site(site)}
    batches = [one_second(T0 + s) for s in range(seconds)]
    readings = sum(readings_of(f) for b in batches for f in b)
    state = PartialState()
    start = time.perf_counter()
    for b in batches:
        for i in range(0, len(b), 500):  # stream.take(500)
            state, _ = fold_partials(state, b[i : i + 500], sites, source_partition="t:0")
    return readings / (time.perf_counter() - start)


if __name__ == "__main__":
    rate = fold_rate()
    print(f"partial fold: {rate:,.0f} readings/s ({rate / 300_000:.1f}x the 400 MW site's load)")
