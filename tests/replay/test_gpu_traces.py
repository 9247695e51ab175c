"""GPU traces: reading NVML and nvidia-smi captures, and driving many GPUs from one trace.

Expected values are read from the fixture files with the csv module in the test itself,
then combined by the rules stated in streams/replay/gpu_traces.py.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import msgspec
import pytest

from schemas.registry import contract_for
from schemas.telemetry import GpuFrame
from schemas.validation import Limits, Rejection
from streams.replay.gpu_traces import (
    GpuDrive,
    TraceError,
    node_frames,
    read_nvidia_smi_csv,
    read_nvml_csv,
    recorded_frames,
)
from transforms.sources import SHARED_DATA

FIX = Path(__file__).parents[1] / "fixtures"
NVML = FIX / "h100_nvml_trace_head.csv"
SMI = FIX / "nvidia_smi_query_gpu.csv"
SHARED_SMI = SHARED_DATA / "gpu_power_traces" / "h100_8gpu_gpt_training_nvidia_smi_100ms_part1.csv"

ROWS = list(csv.DictReader(NVML.open()))
E0 = int(ROWS[0]["energy_mj"])
STEP = 0.05  # the capture's sample period (shared/data/SOURCES.md)
PASS_MJ = (int(ROWS[-1]["energy_mj"]) - E0) + int(ROWS[-1]["power_mw"]) / 1000 * STEP * 1000
DURATION = float(ROWS[-1]["ts"]) - float(ROWS[0]["ts"]) + STEP


def frames(drive: GpuDrive, start: float, end: float) -> list[GpuFrame]:
    return [msgspec.json.decode(r.value, type=GpuFrame) for r in node_frames(drive, start, end)]


def test_nvml_csv_units() -> None:
    t = read_nvml_csv(NVML)
    assert len(t.t_s) == len(ROWS) == 40
    assert t.t_s[0] == 0.0
    assert t.power_w[0] == pytest.approx(int(ROWS[0]["power_mw"]) / 1000)
    assert t.power_instant_w is not None
    assert t.power_instant_w[3] == pytest.approx(int(ROWS[3]["power_instant_mw"]) / 1000)
    assert t.energy_mj is not None and t.energy_mj[0] == E0
    assert t.t0_s == float(ROWS[0]["ts"])
    assert t.step_s == pytest.approx(STEP)
    assert t.duration_s == pytest.approx(DURATION)


@pytest.mark.parametrize("scale", [1.0, 2.0, 0.5])
def test_looped_counter_adds_one_pass_per_loop_times_scale(scale: float) -> None:
    t = read_nvml_csv(NVML)
    drive = GpuDrive([t], ["n1"], 1, t.duration_s, "s", scale=scale)
    got = frames(drive, 1000.0, 1000.0 + 5 * t.duration_s)
    assert [f.seq for f in got] == [0, 1, 2, 3, 4]
    for k, f in enumerate(got):
        assert f.energy_mj[0] == pytest.approx(E0 + scale * k * PASS_MJ, abs=1)
        assert f.power_w[0] == pytest.approx(scale * int(ROWS[0]["power_mw"]) / 1000)


def test_counter_is_monotonic_across_loops() -> None:
    t = read_nvml_csv(NVML)
    got = frames(GpuDrive([t], ["n1"], 1, 0.13, "s"), 0.0, 10.0)
    counters = [f.energy_mj[0] for f in got]
    assert None not in counters
    assert counters == sorted(counters)  # type: ignore[type-var]


def test_each_gpu_starts_at_its_own_phase() -> None:
    t = read_nvml_csv(NVML)
    drive = GpuDrive([t], ["n1", "n2"], 2, 1.0, "s", phase_step_s=0.125)
    first = frames(drive, 0.0, 1.0)
    # GPU k (across nodes) starts at 0.125 k s: sample index floor(0.125 k / 0.05)
    for n, f in enumerate(first):
        for g in range(2):
            k = 2 * n + g
            row = ROWS[int(0.125 * k / STEP + 1e-9)]
            assert f.energy_mj[g] == int(row["energy_mj"])
            assert f.node_id == [f"n{n + 1}"] * 2
            assert f.gpu_index == [0, 1]


def test_without_loop_a_node_stops_at_the_end_of_its_trace() -> None:
    t = read_nvml_csv(NVML)
    got = frames(GpuDrive([t], ["n1"], 1, 0.6, "s", loop=False), 0.0, 60.0)
    assert [f.ts_s for f in got] == pytest.approx([0.0, 0.6, 1.2, 1.8])  # the trace lasts 2.0 s


def test_nvidia_smi_log_with_index_column() -> None:
    traces = read_nvidia_smi_csv(SMI)
    assert len(traces) == 2
    gpu1 = traces[1]
    assert gpu1.power_w == (72.45, 395.20, 640.50)
    assert gpu1.util_pct == (0.0, None, 100.0)  # [N/A] -> None
    assert gpu1.sm_clock_mhz == (345, None, 1980)
    assert gpu1.energy_mj is None  # nvidia-smi has no counter; never synthesised
    assert traces[0].t_s == pytest.approx((0.0, 1.0, 2.0))
    f = frames(GpuDrive(traces, ["n"], 2, 1.0, "s"), 0.0, 3.0)
    assert [x.energy_mj for x in f] == [[None, None]] * 3


def test_nvidia_smi_log_without_index_groups_consecutive_rows() -> None:
    rows = list(csv.reader(SHARED_SMI.open(), skipinitialspace=True))[1:]
    traces = read_nvidia_smi_csv(SHARED_SMI, gpus=8)
    assert len(traces) == 8
    assert all(len(t.power_w) == len(rows) // 8 for t in traces)
    assert traces[0].power_w[0] == float(rows[0][1].split()[0])
    assert traces[7].power_w[1] == float(rows[15][1].split()[0])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("ts,power_mw\n1,2\n", "missing column"),
        ("ts,power_mw,energy_mj\n2,100,5\n1,100,6\n", "backwards"),
        ("ts,power_mw,energy_mj\n1,abc,5\n", "bad number"),
        ("ts,power_mw,energy_mj\n", "no samples"),
    ],
)
def test_bad_nvml_files_are_named(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(TraceError, match=match):
        read_nvml_csv(p)


def test_smi_log_without_index_needs_gpu_count() -> None:
    with pytest.raises(TraceError, match="how many GPUs"):
        read_nvidia_smi_csv(SHARED_SMI)


def _decoded(records: object) -> list[GpuFrame]:
    """Records read back with the topic's contract (which checks the step columns)."""
    out = []
    for r in records:  # type: ignore[attr-defined]
        got = contract_for("telemetry.gpu.v1").decode(r.value, Limits(now_s=r.ts_s + 1))
        assert not isinstance(got, Rejection), got
        out.append(got)
    return out


@pytest.mark.parametrize(("period", "scale"), [(0.15, 1.0), (0.6, 0.5), (1.0, 2.0)])
def test_counter_trace_frames_carry_steps_between_consecutive_polls(
    period: float, scale: float
) -> None:
    t = read_nvml_csv(NVML)
    drive = GpuDrive([t], ["n1", "n2"], 2, period, "s", phase_step_s=0.3, scale=scale)
    got = _decoded(node_frames(drive, 5000.0, 5006.0))  # 6 s: looping the 2 s trace
    for node in ("n1", "n2"):
        mine = [f for f in got if f.source_id == node]
        assert len(mine) == math.ceil(6.0 / period - 1e-9)
        first = mine[0]
        assert (first.energy_step_mj, first.step_s, first.step_power_w) == (None, None, None)
        for prev, cur in zip(mine, mine[1:], strict=False):
            assert cur.energy_step_mj == [
                b - a  # type: ignore[operator]
                for a, b in zip(prev.energy_mj, cur.energy_mj, strict=True)
            ]
            assert cur.step_s == [cur.ts_s - prev.ts_s] * 2
            assert cur.step_s[0] == pytest.approx(period)
            assert cur.step_power_w == prev.power_w
        for g in range(2):
            total = sum(f.energy_step_mj[g] for f in mine[1:])  # type: ignore[index,misc]
            assert total == mine[-1].energy_mj[g] - first.energy_mj[g]  # type: ignore[operator]


def test_trace_without_a_counter_gives_no_steps() -> None:
    traces = read_nvidia_smi_csv(SMI)
    got = _decoded(node_frames(GpuDrive(traces, ["n"], 2, 1.0, "s"), 0.0, 3.0))
    assert len(got) == 3
    assert all((f.energy_step_mj, f.step_s, f.step_power_w) == (None, None, None) for f in got)


def test_recorded_frames_step_between_consecutive_rows() -> None:
    got = _decoded(recorded_frames(read_nvml_csv(NVML), "h100", "s"))
    assert len(got) == len(ROWS)
    assert got[0].energy_step_mj is None
    for i in range(1, len(ROWS)):
        prev, cur = ROWS[i - 1], ROWS[i]
        f = got[i]
        assert f.energy_step_mj == [int(cur["energy_mj"]) - int(prev["energy_mj"])]
        assert f.step_s is not None and len(f.step_s) == 1
        assert f.step_s[0] == pytest.approx(float(cur["ts"]) - float(prev["ts"]))
        assert f.step_power_w == [int(prev["power_mw"]) / 1000]
