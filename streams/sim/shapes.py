"""GPU power shape templates, derived from real H100 traces, and per-job power series.

Templates are 1 Hz series of power as a fraction of the 700 W limit, cut from:

- ``data/gpu/h100_nvml_trace.csv`` (our NVML capture, 50 ms, ``power_mw`` is NVML's 1 s
  average): steady training, short checkpoint pauses, Poisson inference, idle.
- ``data/gpu_power_traces/h100_8gpu_gpt_training_nvidia_smi_100ms_part1.csv`` (8 x H100
  GPT training, 100 ms): a second training level, the ~20 s evaluation/checkpoint dips, and
  the spread between the GPUs of one node.

``python -m streams.sim.shapes DATA_DIR`` re-derives them and rewrites ``shape_data.py``, so
the simulator does not need the data folder at run time.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from streams.sim.spec import JobKind

F64 = npt.NDArray[np.float64]
LIMIT_W = 700.0
"""Power limit of the traced GPUs (h100_info.json: 700000 mW)."""


class ShapeTemplates(msgspec.Struct, kw_only=True, frozen=True):
    """1 Hz power fractions of the GPU power limit."""

    idle: float
    train: list[list[float]]
    """Steady training stretches (one per source)."""
    dips: list[list[float]]
    """Checkpoint / evaluation dips, from the last training second to the first back up."""
    inference: list[float]
    gpu_spread: list[float]
    """Per-GPU ratio to the node mean while training (8 values, mean 1)."""


def _seconds(ts: F64, power: F64) -> F64:
    """Mean of each whole second (relative to the first sample)."""
    sec = np.floor(ts - ts[0]).astype(np.int64)
    sums = np.bincount(sec, weights=power)
    counts = np.bincount(sec)
    keep = counts > 0
    return np.asarray(sums[keep] / counts[keep], dtype=np.float64)


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def derive_templates(nvml_csv: Path, smi_csv: Path) -> ShapeTemplates:
    # NVML capture: phases are labelled.
    with nvml_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    ts = np.array([float(r["ts"]) for r in rows])
    mw = np.array([float(r["power_mw"]) for r in rows]) / 1000.0 / LIMIT_W
    phase = np.array([r["phase"] for r in rows])

    def phase_seconds(name: str) -> list[F64]:
        return [_seconds(ts[a:b], mw[a:b]) for a, b in _runs(phase == name)]

    idle = float(np.median(np.concatenate(phase_seconds("idle"))))
    trains = phase_seconds("train")
    # Skip each stretch's first 2 s: the 1 s average is still climbing out of the dip.
    train_nvml = np.concatenate([t[2:] for t in trains])
    dips = []
    for (a, b), nxt in zip(_runs(phase == "checkpoint"), trains[1:], strict=False):
        dips.append(np.concatenate([_seconds(ts[a:b], mw[a:b]), nxt[:2]]))
    inference = np.concatenate(phase_seconds("inference"))

    # 8-GPU nvidia-smi trace: 8 consecutive rows per sample, no GPU index column.
    with smi_csv.open(newline="") as f:
        smi = list(csv.reader(f))[1:]
    n = len(smi) // 8
    when = np.array(
        [
            dt.datetime.strptime(r[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
            for r in smi[: n * 8 : 8]
        ]
    )
    p = np.array([float(r[1].split()[0]) for r in smi[: n * 8]]).reshape(n, 8) / LIMIT_W
    node = _seconds(when, p.mean(axis=1))
    busy = node > 0.6
    train_runs = [(a, b) for a, b in _runs(busy) if b - a >= 10]
    train_smi = np.concatenate([node[a + 2 : b - 1] for a, b in train_runs])
    for (_, end), (start, _) in zip(train_runs, train_runs[1:], strict=False):
        dips.append(node[end - 1 : start + 2])
    in_train = np.zeros(n, dtype=bool)
    sec = np.floor(when - when[0]).astype(np.int64)
    for a, b in train_runs:
        in_train |= (sec >= a + 2) & (sec < b - 1)
    spread = p[in_train].mean(axis=0)
    spread = spread / spread.mean()
    r = 4
    return ShapeTemplates(
        idle=round(idle, r),
        train=[np.round(train_nvml, r).tolist(), np.round(train_smi, r).tolist()],
        dips=[np.round(d, r).tolist() for d in dips],
        inference=np.round(inference, r).tolist(),
        gpu_spread=np.round(spread, r).tolist(),
    )


def load_templates() -> ShapeTemplates:
    from streams.sim import shape_data

    return msgspec.convert(shape_data.TEMPLATES, ShapeTemplates)


def _blocks(rng: np.random.Generator, source: F64, length: int, block: int = 8) -> F64:
    """A stationary bootstrap: random ``block``-second pieces of ``source`` laid end to end."""
    if length <= 0:
        return np.zeros(0)
    starts = rng.integers(0, max(1, len(source) - block), size=length // block + 1)
    pieces = [source[s : s + block] for s in starts]
    return np.concatenate(pieces)[:length]


def job_series(
    tpl: ShapeTemplates,
    kind: JobKind,
    *,
    seed: int,
    length_s: int = 3600,
    checkpoint_every_s: float = 900.0,
) -> F64:
    """A ``length_s`` loop of the job's power fraction, one value per second.

    Training: steady stretches cut from the traces, with a checkpoint or evaluation dip
    every ``checkpoint_every_s`` (jittered); inference: the traced Poisson bursts. The same
    seed always gives the same series; indexing it by UTC second makes a day reproducible.
    """
    rng = np.random.default_rng(seed)
    if kind == "inference":
        src = np.asarray(tpl.inference)
        # Many requests in flight over a node batch together: lift the single-GPU trace
        # towards a busier serving level, keeping its burst shape.
        level = rng.uniform(1.2, 1.8)
        out = tpl.idle + (_blocks(rng, src, length_s, block=5) - tpl.idle) * level * 3.0
        return np.clip(out, tpl.idle, 1.0)
    which = int(rng.integers(len(tpl.train)))
    train = np.asarray(tpl.train[which])
    pieces: list[F64] = []
    total = 0
    while total < length_s:
        run = max(10, int(checkpoint_every_s * rng.uniform(0.85, 1.15)))
        pieces.append(_blocks(rng, train, run))
        pieces.append(np.asarray(tpl.dips[int(rng.integers(len(tpl.dips)))]))
        total += run + len(pieces[-1])
    out = np.concatenate(pieces)[:length_s]
    # Rotate so jobs with the same period do not checkpoint in the same second.
    return np.roll(out, int(rng.integers(length_s)))


def main(argv: list[str]) -> int:
    from transforms.sources import SHARED_DATA  # polars: only for this command

    data = Path(argv[0]) if argv else SHARED_DATA
    tpl = derive_templates(
        data / "gpu" / "h100_nvml_trace.csv",
        data / "gpu_power_traces" / "h100_8gpu_gpt_training_nvidia_smi_100ms_part1.csv",
    )
    target = Path(__file__).with_name("shape_data.py")
    body = msgspec.json.format(msgspec.json.encode(tpl).decode(), indent=1)
    target.write_text(
        '"""Generated by ``python -m streams.sim.shapes``: GPU power templates (fractions of\n'
        'the 700 W limit, 1 Hz) derived from the H100 traces; see ``shapes.py``."""\n\n'
        "from typing import Any\n\n"
        f"TEMPLATES: dict[str, Any] = {body}\n"
    )
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
