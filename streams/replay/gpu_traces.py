"""GPU power traces (NVML CSV captures, nvidia-smi query-gpu logs) and the frames they drive.

A trace is a *pattern*: its own clock is only used relative to its first sample, so one
H100 capture can drive many GPUs on any day. ``GpuDrive`` samples it on a fixed period for
a set of nodes, each GPU starting at its own phase into the trace, optionally looping and
scaled. Sampling is sample-and-hold (the last sample at or before the instant), which is
what a 1 Hz NVML poll of a GPU whose power is already a 1 s average would see.

The energy counter stays an NVML-like monotonic counter across loops: each pass adds the
trace's whole energy (counter span plus the last sample's power over one sample period),
times ``scale``. A trace without a counter (nvidia-smi logs) gives ``energy_mj = None``:
downstream integrates power, never a synthesised counter.

Frames carry each GPU's counter step since the node's previous frame, as a collector polling
at that period would (``streams.collectors.gpu_steps``): between consecutive polled samples
of a trace with a counter; none from a trace without one, nor in a node's first frame.
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import msgspec

from schemas.telemetry import GpuFrame
from streams.collectors.gpu_steps import StepTracker
from streams.errors import TerminalError
from streams.replay.records import Record


class TraceError(TerminalError, ValueError):
    """A GPU trace file is not in the expected shape (names file and line)."""


@dataclass(frozen=True)
class GpuTrace:
    """One GPU's samples, times relative to the first sample (seconds)."""

    name: str
    t_s: tuple[float, ...]
    power_w: tuple[float, ...]
    energy_mj: tuple[int, ...] | None
    power_instant_w: tuple[float | None, ...] | None = None
    util_pct: tuple[float | None, ...] | None = None
    temp_c: tuple[float | None, ...] | None = None
    sm_clock_mhz: tuple[int | None, ...] | None = None
    throttle_reasons: tuple[int | None, ...] | None = None
    t0_s: float = 0.0
    """Recorded time of the first sample (UTC seconds where the file says so)."""

    @cached_property
    def step_s(self) -> float:
        """Typical sample period: the median gap."""
        if len(self.t_s) < 2:
            return 1.0
        gaps = sorted(b - a for a, b in zip(self.t_s, self.t_s[1:], strict=False))
        return gaps[len(gaps) // 2] or 1.0

    @cached_property
    def duration_s(self) -> float:
        """Length of one pass: span plus one sample period, so a loop is seamless."""
        return self.t_s[-1] + self.step_s

    @cached_property
    def pass_energy_mj(self) -> float | None:
        if self.energy_mj is None:
            return None
        tail = self.power_w[-1] * self.step_s * 1000.0
        return float(self.energy_mj[-1] - self.energy_mj[0]) + tail

    def index_at(self, tau_s: float) -> int:
        return max(bisect_right(self.t_s, tau_s) - 1, 0)


# ---------------------------------------------------------------- readers


def _opt_float(text: str) -> float | None:
    t = text.strip()
    if not t or t.startswith("[") or t.upper() in ("N/A", "NA"):
        return None
    return float(t.split()[0])


def _opt_int(text: str) -> int | None:
    v = _opt_float(text)
    return None if v is None else int(v)


def read_nvml_csv(path: Path | str) -> GpuTrace:
    """A capture in the format of ``shared/data/gpu/h100_nvml_trace.csv`` (one GPU)."""
    p = Path(path)
    need = ("ts", "power_mw", "energy_mj")
    rows: list[dict[str, str]] = []
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceError(f"{p}, line 1: missing column(s) {missing}")
        rows = list(reader)
    if not rows:
        raise TraceError(f"{p}: no samples")
    try:
        ts = [float(r["ts"]) for r in rows]
        power = [float(r["power_mw"]) / 1000.0 for r in rows]
        energy = [int(r["energy_mj"]) for r in rows]
    except ValueError as exc:
        raise TraceError(f"{p}: bad number in ts/power_mw/energy_mj: {exc}") from exc
    for i in range(1, len(ts)):
        if ts[i] < ts[i - 1]:
            raise TraceError(f"{p}, line {i + 2}: ts goes backwards")

    def col(name: str, scale: float = 1.0) -> tuple[float | None, ...] | None:
        if name not in rows[0]:
            return None
        return tuple(None if (v := _opt_float(r[name])) is None else v * scale for r in rows)

    def icol(name: str) -> tuple[int | None, ...] | None:
        return tuple(_opt_int(r[name]) for r in rows) if name in rows[0] else None

    return GpuTrace(
        name=p.stem,
        t_s=tuple(t - ts[0] for t in ts),
        power_w=tuple(power),
        energy_mj=tuple(energy),
        power_instant_w=col("power_instant_mw", 0.001),
        util_pct=col("gpu_util_pct"),
        temp_c=col("temp_c"),
        sm_clock_mhz=icol("sm_clock_mhz"),
        throttle_reasons=icol("clock_event_reasons"),
        t0_s=ts[0],
    )


_SMI_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S")


def _smi_time(text: str, where: str) -> float:
    from datetime import UTC, datetime

    for fmt in _SMI_TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise TraceError(f"{where}: timestamp {text!r} is not YYYY/MM/DD HH:MM:SS[.fff]")


def read_nvidia_smi_csv(path: Path | str, gpus: int | None = None) -> list[GpuTrace]:
    """An ``nvidia-smi --query-gpu=... --format=csv`` log, one trace per GPU.

    Columns are matched by their query name (``power.draw [W]`` -> ``power.draw``); units in
    the values (``"69.32 W"``) and ``[N/A]`` are handled. With an ``index`` column rows are
    grouped by it; without one (as in the shared 8xH100 log) each sample is ``gpus``
    consecutive rows, GPU 0 first, and ``gpus`` must be given. The log's wall clock has no
    time zone: it is read as UTC and only used relative to the first sample.
    """
    p = Path(path)
    with p.open(newline="") as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        header = next(reader, None)
        if header is None:
            raise TraceError(f"{p}: empty file")
        names = [h.split(" [")[0].strip() for h in header]
        if "timestamp" not in names or "power.draw" not in names:
            raise TraceError(f"{p}, line 1: needs timestamp and power.draw columns, has {names}")
        at = {n: i for i, n in enumerate(names)}
        per_gpu: dict[int, list[tuple[float, list[str]]]] = {}
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(names):
                raise TraceError(f"{p}, line {line_no}: {len(row)} fields, header has {len(names)}")
            if "index" in at:
                gpu = int(row[at["index"]])
            elif gpus:
                gpu = (line_no - 2) % gpus
            else:
                raise TraceError(f"{p}: no index column; say how many GPUs each sample has")
            per_gpu.setdefault(gpu, []).append(
                (_smi_time(row[at["timestamp"]], f"{p}, line {line_no}"), row)
            )
    if not per_gpu:
        raise TraceError(f"{p}: no samples")
    t_first = min(rows[0][0] for rows in per_gpu.values())
    traces: list[GpuTrace] = []
    for gpu in sorted(per_gpu):
        rows = sorted(per_gpu[gpu], key=lambda x: x[0])

        def col(
            name: str, rows: list[tuple[float, list[str]]] = rows
        ) -> tuple[float | None, ...] | None:
            return tuple(_opt_float(r[at[name]]) for _, r in rows) if name in at else None

        power = col("power.draw") or ()
        if any(v is None for v in power):
            bad = next(i for i, v in enumerate(power) if v is None)
            raise TraceError(f"{p}: GPU {gpu} sample {bad} has no power.draw")
        clocks = col("clocks.sm")
        traces.append(
            GpuTrace(
                name=f"{p.stem}#{gpu}",
                t_s=tuple(t - t_first for t, _ in rows),
                power_w=tuple(float(v or 0.0) for v in power),
                energy_mj=None,
                power_instant_w=col("power.draw.instant"),
                util_pct=col("utilization.gpu"),
                temp_c=col("temperature.gpu"),
                sm_clock_mhz=None
                if clocks is None
                else tuple(None if c is None else int(c) for c in clocks),
                t0_s=t_first,
            )
        )
    return traces


# ---------------------------------------------------------------- driving nodes


@dataclass(frozen=True, slots=True)
class GpuDrive:
    """Which trace drives which nodes, and how."""

    traces: Sequence[GpuTrace]
    nodes: Sequence[str]
    gpus_per_node: int
    period_s: float
    site_id: str
    phase_step_s: float = 0.0
    """GPU k (counted across all nodes) starts ``k * phase_step_s`` into the trace."""
    scale: float = 1.0
    """Multiplies power and energy (e.g. 0.9 for a lighter job, 1.0 for the capture)."""
    loop: bool = True
    """Repeat the trace to fill the window; otherwise a node stops when its trace ends."""


def _get(
    col: tuple[float | None, ...] | tuple[int | None, ...] | None, i: int
) -> float | int | None:
    return None if col is None else col[i]


def node_frames(drive: GpuDrive, start_s: float, end_s: float) -> Iterator[Record]:
    """GpuFrames of every node every ``period_s`` from ``start_s`` (inclusive) to ``end_s``."""
    if drive.period_s <= 0:
        raise ValueError(f"period_s must be positive, got {drive.period_s}")
    if not drive.traces:
        raise ValueError("no GPU trace to drive nodes with")
    encoder = msgspec.json.Encoder()
    n_ticks = math.ceil((end_s - start_s) / drive.period_s - 1e-9)
    seq = dict.fromkeys(drive.nodes, 0)
    steps = StepTracker()
    for tick in range(n_ticks):
        rel = tick * drive.period_s
        ts = start_s + rel
        for n, node in enumerate(drive.nodes):
            frame = _node_frame(drive, n, node, rel, ts, seq[node])
            if frame is None:
                continue
            seq[node] += 1
            frame = steps.frame(frame)
            yield Record(ts, "telemetry.gpu.v1", node.encode(), encoder.encode(frame))


def _node_frame(
    drive: GpuDrive, n: int, node: str, rel: float, ts: float, seq: int
) -> GpuFrame | None:
    cols: dict[str, list[object]] = {
        k: []
        for k in (
            "power_w",
            "energy_mj",
            "power_instant_w",
            "util_pct",
            "temp_c",
            "sm_clock_mhz",
            "throttle_reasons",
        )
    }
    for g in range(drive.gpus_per_node):
        k = n * drive.gpus_per_node + g
        trace = drive.traces[k % len(drive.traces)]
        tau = rel + k * drive.phase_step_s
        passes = math.floor(tau / trace.duration_s)
        if passes and not drive.loop:
            return None
        tau -= passes * trace.duration_s
        i = trace.index_at(tau)
        s = drive.scale
        cols["power_w"].append(trace.power_w[i] * s)
        if trace.energy_mj is None or trace.pass_energy_mj is None:
            cols["energy_mj"].append(None)
        else:
            e = trace.energy_mj[0] + s * (
                passes * trace.pass_energy_mj + trace.energy_mj[i] - trace.energy_mj[0]
            )
            cols["energy_mj"].append(round(e))
        inst = _get(trace.power_instant_w, i)
        cols["power_instant_w"].append(None if inst is None else inst * s)
        cols["util_pct"].append(_get(trace.util_pct, i))
        cols["temp_c"].append(_get(trace.temp_c, i))
        cols["sm_clock_mhz"].append(_get(trace.sm_clock_mhz, i))
        cols["throttle_reasons"].append(_get(trace.throttle_reasons, i))

    def opt(name: str) -> list[object] | None:
        values = cols[name]
        return None if all(v is None for v in values) else values

    return GpuFrame(
        site_id=drive.site_id,
        source_id=node,
        ts_s=ts,
        seq=seq,
        node_id=[node] * drive.gpus_per_node,
        gpu_index=list(range(drive.gpus_per_node)),
        power_w=cols["power_w"],  # type: ignore[arg-type]
        energy_mj=cols["energy_mj"],  # type: ignore[arg-type]
        power_instant_w=opt("power_instant_w"),  # type: ignore[arg-type]
        util_pct=opt("util_pct"),  # type: ignore[arg-type]
        temp_c=opt("temp_c"),  # type: ignore[arg-type]
        sm_clock_mhz=opt("sm_clock_mhz"),  # type: ignore[arg-type]
        throttle_reasons=opt("throttle_reasons"),  # type: ignore[arg-type]
    )


def recorded_frames(trace: GpuTrace, node: str, site_id: str) -> Iterator[Record]:
    """Every sample of one trace as a one-GPU frame at its recorded time (file mode), with
    the counter step since the previous sample."""
    encoder = msgspec.json.Encoder()
    steps = StepTracker()
    for i, rel in enumerate(trace.t_s):
        ts = trace.t0_s + rel
        frame = GpuFrame(
            site_id=site_id,
            source_id=node,
            ts_s=ts,
            seq=i,
            node_id=[node],
            gpu_index=[0],
            power_w=[trace.power_w[i]],
            energy_mj=[None if trace.energy_mj is None else trace.energy_mj[i]],
            power_instant_w=None if trace.power_instant_w is None else [trace.power_instant_w[i]],
            util_pct=None if trace.util_pct is None else [trace.util_pct[i]],
            temp_c=None if trace.temp_c is None else [trace.temp_c[i]],
            sm_clock_mhz=None if trace.sm_clock_mhz is None else [trace.sm_clock_mhz[i]],
            throttle_reasons=None
            if trace.throttle_reasons is None
            else [trace.throttle_reasons[i]],
        )
        frame = steps.frame(frame)
        yield Record(ts, "telemetry.gpu.v1", node.encode(), encoder.encode(frame))
