"""AI energy from the real H100 NVML capture at 1, 5, 10 and 60 s polling: samples against
counters, each against the GPUs' own counters.

Eight GPUs of one node replay ``shared/data/gpu/h100_nvml_trace.csv`` (154 s: idle,
inference, training, a checkpoint and a 1 s square wave), each at its own phase, looped over
``seconds`` of event time (default one hour, four intervals), polled every P seconds at
0.37 s past the second (``streams.replay.gpu_traces``). Both power stages run in process, one
batch per second of event time (as ``tests/replay/cadence_day.py``), and the marts'
``interval_energy`` gives AI energy per interval. The site has no AI meter, so AI energy is
the devices': with the counter steps (``GpuFrame.energy_step_mj``) and without them (the same
frames with the step columns removed: sample-and-hold only). Truth is the GPUs' own counter
at each interval boundary; the node's overhead (a constant of the site file) is taken out.

A second table replays the 8 x H100 GPT-training capture (``nvidia-smi`` every 100 ms, no
counter: sample-and-hold only) the same way, against the capture's own 100 ms integral: a
real changing load.

    PYTHONPATH=. .venv/bin/python -m tests.replay.gpu_counter_trace [seconds]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path

import msgspec
import polars as pl

from schemas.events import SitePower
from schemas.site import GpuPool, SiteConfig
from schemas.telemetry import GpuFrame
from streams.decisions.power import (
    CombineState,
    PartialState,
    close_all,
    combine,
    fold_partials,
    index_site,
)
from streams.replay.gpu_traces import GpuDrive, node_frames, read_nvidia_smi_csv, read_nvml_csv
from tests.decisions.conftest import make_site
from transforms.energy import COUNTER_COLUMNS, SITE_POWER_COLUMNS, interval_energy

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
TRACE = SHARED / "gpu" / "h100_nvml_trace.csv"
SMI = SHARED / "gpu_power_traces" / "h100_8gpu_gpt_training_nvidia_smi_100ms_part1.csv"
"""8 x H100 training GPT, nvidia-smi every 100 ms: a real changing load with no counter."""
START_S = 1_760_000_400
"""An interval boundary (2025-10-09T09:00:00Z)."""
JITTER_S = 0.37
GPUS = 8
NODE = "s1-h100-n0000"
OVERHEAD_W = 1000.0
PERIODS = (1, 5, 10, 60)
DECODER = msgspec.json.Decoder(GpuFrame)


def trace_site(period_s: float) -> SiteConfig:
    """One H100 node, no meters (AI energy is the devices'), GPU readings held 3 polls."""
    site = make_site()
    raw = {
        **msgspec.to_builtins(site),
        "meters": [],
        "max_staleness": {"gpu_s": 3.0 * period_s},
    }
    site = msgspec.convert(raw, SiteConfig)
    pool = GpuPool(name="h100", nodes=1, gpus_per_node=GPUS, gpu_model="H100-SXM",
                   gpu_power_limit_w=700.0, node_overhead_w=OVERHEAD_W)
    return msgspec.structs.replace(site, gpu_pools=[pool], asic_models=[])


def drive(period_s: float) -> GpuDrive:
    return GpuDrive(traces=[read_nvml_csv(TRACE)], nodes=[NODE], gpus_per_node=GPUS,
                    period_s=period_s, site_id="s1", phase_step_s=19.3)


def polled(period_s: float, seconds: int, lead_s: float) -> list[GpuFrame]:
    """Polls at ``START_S + JITTER_S + lead_s + k x period_s`` (``lead_s`` in [0, period))."""
    origin = START_S + JITTER_S - (period_s - lead_s) % period_s
    frames = (DECODER.decode(r.value) for r in node_frames(drive(period_s), origin,
                                                           origin + seconds))
    return [f for f in frames if f.ts_s >= START_S]


def without_steps(frames: Iterable[GpuFrame]) -> list[GpuFrame]:
    return [msgspec.structs.replace(f, energy_step_mj=None, step_s=None, step_power_w=None)
            for f in frames]


def run(site: SiteConfig, frames: list[GpuFrame], seconds: int) -> list[SitePower]:
    idx = index_site(site)
    sites = {site.site_id: idx}
    by_second: dict[int, list[GpuFrame]] = {}
    for f in frames:
        by_second.setdefault(math.floor(f.ts_s), []).append(f)
    pstate, cstate = PartialState(), CombineState()
    powers: list[SitePower] = []
    for k in range(seconds + 1):
        pstate, folded = fold_partials(pstate, by_second.get(START_S + k, []), sites,
                                       source_partition="t:0", lateness_s=2)
        cstate, combined = combine(cstate, folded.partials, sites, now_s=0.0)
        powers.extend(combined.powers)
    cstate, combined = close_all(cstate, sites, now_s=0.0)
    powers.extend(combined.powers)
    return powers


def gpu_mwh(powers: list[SitePower], seconds: int) -> pl.DataFrame:
    """``[interval_start_s, gpu_mwh, counter_mwh]``: AI energy less the node overhead."""
    frame = pl.DataFrame([msgspec.structs.asdict(p) for p in powers], infer_schema_length=None)
    counters = (frame.select(COUNTER_COLUMNS).drop_nulls()
                if "ai_counter_wh" in frame.columns else None)
    energy = interval_energy(frame.select(SITE_POWER_COLUMNS), ai_counter=counters)
    return (energy.filter(pl.col("interval_start_s") < START_S + seconds)
            .select("interval_start_s",
                    (pl.col("ai_mwh") - OVERHEAD_W * pl.col("covered_s") / 3.6e9)
                    .alias("gpu_mwh"),
                    "ai_counter_mwh", "covered_s"))


def truth_mwh(period_s: float, seconds: int, lead_s: float) -> dict[int, float]:
    """Each interval's GPU energy from the GPUs' own counters at ``START_S + JITTER_S +
    900 i`` (the pipeline's seconds run from a poll's second: the same sub-second shift at
    both ends), on the polls' trace clock."""
    origin = START_S + JITTER_S - (period_s - lead_s) % period_s
    at = {}
    for r in node_frames(drive(period_s / 2), origin, START_S + seconds + 1):
        f = DECODER.decode(r.value)
        k = round(f.ts_s - START_S - JITTER_S, 6)
        if k >= 0 and k % 900 == 0:
            at[int(k)] = sum(e for e in f.energy_mj if e is not None)
    return {START_S + k: (at[k + 900] - at[k]) / 3.6e12 for k in at if k + 900 in at}


def measure(period_s: int, seconds: int, lead_s: float = 0.0) -> dict[str, float]:
    """Worst interval's error against the counters, and the whole run's, with and without
    the counter steps (fractions)."""
    site = trace_site(period_s)
    frames = polled(period_s, seconds + 2 * period_s, lead_s)  # and the closing polls
    truth = truth_mwh(period_s, seconds, lead_s)
    out: dict[str, float] = {}
    for name, fs in (("samples", without_steps(frames)), ("counters", frames)):
        got = gpu_mwh(run(site, fs, seconds + 2 * period_s), seconds)
        # The first interval starts before the first poll is held: compare whole ones.
        rows = [r for r in got.iter_rows(named=True)
                if r["interval_start_s"] in truth and r["covered_s"] >= 899.0]
        errs = [r["gpu_mwh"] / truth[r["interval_start_s"]] - 1.0 for r in rows]
        total = sum(r["gpu_mwh"] for r in rows)
        true_total = sum(truth[r["interval_start_s"]] for r in rows)
        out[f"{name}_worst"] = max(errs, key=abs)
        out[f"{name}_total"] = total / true_total - 1.0
        out[f"{name}_mwh"] = total
        out["truth_mwh"] = true_total
        out["intervals"] = len(rows)
    return out


def smi_drive(period_s: float) -> GpuDrive:
    return GpuDrive(traces=read_nvidia_smi_csv(SMI, gpus=GPUS), nodes=[NODE],
                    gpus_per_node=GPUS, period_s=period_s, site_id="s1")


def measure_smi(period_s: int, seconds: int) -> dict[str, float]:
    """Sample-and-hold on the real 8 x H100 training trace (no counter: samples only)
    against the trace's own 100 ms integral over the same intervals."""
    start = START_S + JITTER_S
    frames = [DECODER.decode(r.value) for r in node_frames(
        smi_drive(period_s), start, start + seconds + 2 * period_s)]
    got = gpu_mwh(run(trace_site(period_s), frames, seconds + 2 * period_s), seconds)
    fine = 0.1
    truth: dict[int, float] = {}
    for r in node_frames(smi_drive(fine), start, start + seconds):
        f = DECODER.decode(r.value)
        k = START_S + int((f.ts_s - start) // 900) * 900
        truth[k] = truth.get(k, 0.0) + sum(f.power_w) * fine / 3.6e9
    rows = [r for r in got.iter_rows(named=True)
            if r["interval_start_s"] in truth and r["covered_s"] >= 899.0]
    errs = [r["gpu_mwh"] / truth[r["interval_start_s"]] - 1.0 for r in rows]
    total = sum(r["gpu_mwh"] for r in rows)
    true_total = sum(truth[r["interval_start_s"]] for r in rows)
    return {"intervals": len(rows), "truth_mwh": true_total, "samples_mwh": total,
            "samples_total": total / true_total - 1.0, "samples_worst": max(errs, key=abs)}


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 3600
    print(f"H100 capture on {GPUS} GPUs, {seconds:,} s from {START_S}; AI energy of whole "
          "intervals less node overhead, against the GPUs' counters")
    print("{:>5} {:>9} {:>10} {:>12} {:>13} {:>14} {:>14} {:>14} {:>14}".format(
        "poll", "intervals", "truth kWh", "samples kWh", "counters kWh", "samples total",
        "counters total", "samples worst", "counters worst"))
    for lead in ("aligned", "half"):
        where = "on the interval boundary" if lead == "aligned" else "half a period off it"
        print(f"polls {where} (+{JITTER_S} s)")
        for p in PERIODS:
            m = measure(p, seconds, 0.0 if lead == "aligned" else p / 2)
            print(f"{p:>4}s {m['intervals']:>9.0f} {m['truth_mwh'] * 1e3:>10.4f} "
                  f"{m['samples_mwh'] * 1e3:>12.4f} {m['counters_mwh'] * 1e3:>13.4f} "
                  f"{m['samples_total']:>+14.4%} {m['counters_total']:>+14.4%} "
                  f"{m['samples_worst']:>+14.4%} {m['counters_worst']:>+14.4%}")


    print("\nnvidia-smi 8 x H100 GPT training (100 ms, no counter), looped: sample-and-hold "
          "against the trace's own 100 ms integral")
    print("{:>5} {:>9} {:>10} {:>12} {:>14} {:>14}".format(
        "poll", "intervals", "truth kWh", "samples kWh", "samples total", "samples worst"))
    for p in PERIODS:
        m = measure_smi(p, seconds)
        print(f"{p:>4}s {m['intervals']:>9.0f} {m['truth_mwh'] * 1e3:>10.4f} "
              f"{m['samples_mwh'] * 1e3:>12.4f} {m['samples_total']:>+14.4%} "
              f"{m['samples_worst']:>+14.4%}")


if __name__ == "__main__":
    main()
