"""Benchmark: stage 1 without Kafka or faust (decode, validate, dead-letter, fold), one core.

``python -m streams.bench.stage1 [--scale 1.0] [--seconds 10]``

Frames of the reference site come from the simulator's encoder (the bytes the agents read);
they are handed to ``process_partition`` in batches of 500 per topic, as the agent does. The
figure is the ceiling of one worker's own work; the gap to ``streams.bench.agents`` is what
the faust runtime and Kafka cost. It runs twice: with CPython's default garbage-collector
thresholds and with the worker's (``streams.gc_tuning``).
"""

from __future__ import annotations

import argparse
import math
import time

from schemas.validation import Limits
from streams.agents.messages import Stage1State
from streams.agents.sites import SiteEntry
from streams.agents.stage1 import RawMessage, process_partition
from streams.bench.agents import REFERENCE, _encode_steps
from streams.decisions.fleet import fleet_roster
from streams.decisions.power import index_site
from streams.gc_tuning import throughput_gc
from streams.sim.encode import ENCODINGS, Encoding, FrameEncoder
from streams.sim.model import SiteModel
from streams.site_file import SiteFile, load_site_file
from streams.site_scale import scale_site


def reference_frames(
    scale: float, seconds: int, encoding: Encoding = "json"
) -> tuple[SiteFile, list[tuple[str, bytes, bytes]], int]:
    """The scaled reference site and ``seconds`` of its encoded frames (topic, key, value),
    ending five seconds ago; also the number of readings in them."""
    sf = scale_site(load_site_file(REFERENCE), scale)
    model = SiteModel(sf.site, sf.sim)
    now = math.floor(time.time())
    msgs, readings = _encode_steps(
        model, FrameEncoder(model, encoding), [float(now - seconds - 5 + i) for i in range(seconds)]
    )
    return sf, msgs, readings


def reference_args(prog: str, doc: str | None, seconds: int) -> argparse.Namespace:
    """``--scale`` and ``--seconds`` of ``reference_frames``, from the command line."""
    p = argparse.ArgumentParser(prog=prog, description=doc)
    p.add_argument("--scale", type=float, default=1.0, help="share of the reference site")
    p.add_argument("--seconds", type=int, default=seconds, help="site-seconds of frames")
    p.add_argument(
        "--encoding", choices=ENCODINGS, default="json", help="telemetry encoding (json)"
    )
    return p.parse_args()


def stage1_rate(scale: float, seconds: int, encoding: Encoding = "json") -> dict[str, float]:
    sf, msgs, readings = reference_frames(scale, seconds, encoding)
    site = sf.site
    sites = {site.site_id: SiteEntry(site, index_site(site), fleet_roster(site))}
    by_topic: dict[str, list[RawMessage]] = {}
    for topic, key, value in msgs:
        part = by_topic.setdefault(topic, [])
        part.append(RawMessage(offset=len(part), key=key, value=value))
    limits = Limits(now_s=time.time())
    start = time.perf_counter()
    for topic, part in by_topic.items():
        state = Stage1State()
        for i in range(0, len(part), 500):
            state, out = process_partition(
                state,
                part[i : i + 500],
                sites,
                base_topic=topic,
                topic=topic,
                partition=0,
                limits=limits,
                lateness_s=2,
                consumer="bench",
            )
            assert not out.letters, out.letters[:1]
    wall = time.perf_counter() - start
    return {
        "frames": len(msgs),
        "readings": readings,
        "wall_s": wall,
        "readings_per_s": readings / wall,
        "frames_per_s": len(msgs) / wall,
    }


def main() -> None:
    args = reference_args("python -m streams.bench.stage1", __doc__, seconds=10)
    # CPython's default collector thresholds first, then the worker's (streams.gc_tuning).
    default = stage1_rate(args.scale, args.seconds, args.encoding)
    with throughput_gc():
        tuned = stage1_rate(args.scale, args.seconds, args.encoding)
    for label, r in (("default gc", default), ("worker gc", tuned)):
        print(
            f"stage 1 (no Kafka), {label}: {r['readings']:,} readings in {r['frames']:,} "
            f"frames, {r['readings_per_s']:,.0f} readings/s ({r['frames_per_s']:,.0f} frames/s)"
        )
    print(f"worker gc / default gc: {tuned['readings_per_s'] / default['readings_per_s']:.2f}")


if __name__ == "__main__":
    main()
