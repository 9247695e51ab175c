"""Sample every GPU of this machine at 1 Hz through NVML and write frames plus a summary.

    python -m streams.collectors.nvml_probe --seconds 10 --out probe.json

No Kafka needed. The summary gives, per GPU: name, power range, the energy counter's
difference over the run, and the energy integrated from the 1 s power (trapezoids), with
their ratio; on a healthy H100 the two agree within a few per cent.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from schemas.telemetry import GpuFrame
from streams.collectors.nvml import NvmlSampler, NvmlUnavailable, load_nvml


def summarize(frames: Sequence[GpuFrame], names: Sequence[str]) -> dict[str, Any]:
    """Per-GPU power range and counter-vs-integrated energy (pure)."""
    gpus: list[dict[str, Any]] = []
    if not frames:
        return {"frames": 0, "gpus": gpus}
    for g in range(len(frames[0].power_w)):
        ts = [f.ts_s for f in frames]
        p = [f.power_w[g] for f in frames]
        integrated_j = sum(
            (p[i] + p[i + 1]) / 2.0 * (ts[i + 1] - ts[i]) for i in range(len(ts) - 1)
        )
        e0, e1 = frames[0].energy_mj[g], frames[-1].energy_mj[g]
        counter_j = None if e0 is None or e1 is None else (e1 - e0) / 1000.0
        gpus.append(
            {
                "index": g,
                "name": names[g] if g < len(names) else None,
                "power_min_w": min(p),
                "power_max_w": max(p),
                "power_mean_w": sum(p) / len(p),
                "energy_counter_delta_j": counter_j,
                "energy_integrated_j": integrated_j,
                "counter_over_integrated": (counter_j / integrated_j)
                if counter_j and integrated_j
                else None,
                "instant_power_available": bool(
                    frames[0].power_instant_w and frames[0].power_instant_w[g] is not None
                ),
            }
        )
    return {"frames": len(frames), "span_s": frames[-1].ts_s - frames[0].ts_s, "gpus": gpus}


def probe(
    nvml: Any, seconds: float, period_s: float = 1.0, node_id: str | None = None
) -> dict[str, Any]:
    sampler = NvmlSampler(nvml, node_id or socket.gethostname(), "probe")
    names = sampler.names()
    frames: list[GpuFrame] = []
    next_at = time.monotonic()
    end = next_at + seconds
    seq = 0
    while time.monotonic() < end + 1e-6:
        frames.append(sampler.frame(sampler.read(), time.time(), seq))
        seq += 1
        next_at += period_s
        time.sleep(max(0.0, next_at - time.monotonic()))
    return {
        "summary": summarize(frames, names),
        "nvml_errors": dict(sampler.errors),
        "frames": [msgspec.to_builtins(f) for f in frames],
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--period", type=float, default=1.0, help="sampling period, s (default 1)")
    ap.add_argument("--out", type=Path, default=Path("probe.json"))
    args = ap.parse_args(argv)
    try:
        nvml = load_nvml()
    except NvmlUnavailable as exc:
        print(f"nvml_probe: {exc}", file=sys.stderr)
        return 2
    try:
        result = probe(nvml, args.seconds, args.period)
    finally:
        nvml.nvmlShutdown()
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
