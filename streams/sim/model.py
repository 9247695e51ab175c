"""The site as a pure model: ``SiteModel.step(t_s)`` advances one second and returns the
readings every collector would send; ``SiteModel.command`` is the closed loop's input.

No I/O here: ``runner.py`` moves the frames to Kafka. Everything is vectorised with numpy
over devices; the same seed and start time give the same frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from schemas.events import MinerCommand
from schemas.site import SiteConfig
from schemas.telemetry import AsicFrame, AsicState, GpuFrame, MeterFrame
from streams.sim.asics import AsicColumns, AsicFleet, AsicRack, CommandResult
from streams.sim.cadence import Cadence
from streams.sim.faults import FaultConfig
from streams.sim.gpus import GpuColumns, GpuFleet, GpuRack, GpuSteps
from streams.sim.shapes import ShapeTemplates, load_templates
from streams.sim.spec import SimSpec

F64 = npt.NDArray[np.float64]
T = TypeVar("T")

METER_NOISE = 0.001
"""Revenue-grade meters (class 0.2): 0.1 % standard deviation per reading."""
LOSS_AT_LIMIT = 0.005
"""Transformer and cable losses, I^2 R: 0.5 % of the power when at the interconnection limit."""
COOLING_SWING = 0.05
"""Cooling overhead swings +-5 % over the day with the outside temperature."""


@dataclass(frozen=True)
class Truth:
    """What the site really drew in a second (before meter noise), W."""

    ai_w: float
    mining_w: float
    overhead_w: float
    losses_w: float

    @property
    def poi_w(self) -> float:
        return self.ai_w + self.mining_w + self.overhead_w + self.losses_w


@dataclass
class Step:
    """One second of readings, columnar; ``*_frames()`` builds the message structs."""

    site_id: str
    ts_s: float
    seq: int
    gpu: GpuColumns
    gpu_racks: list[GpuRack]
    gpu_ts: list[float]
    asic: AsicColumns
    asic_racks: list[AsicRack]
    asic_ts: list[float]
    meter: MeterFrame
    truth: Truth
    gpu_due: list[bool] | None = None
    """Which GPU racks poll this second (``streams.sim.cadence``); None: all."""
    asic_due: list[bool] | None = None
    meter_due: bool = True
    gpu_steps: GpuSteps | None = None
    """Each polled GPU's counter step since its rack's previous poll; None: no steps."""

    @property
    def readings(self) -> int:
        gpus = sum(r.stop - r.start for r in self.polled_gpu_racks())
        asics = sum(r.stop - r.start for r in self.polled_asic_racks())
        return gpus + asics + (len(self.meter.meter_id) if self.meter_due else 0)

    def polled_gpu_racks(self) -> list[GpuRack]:
        return polled(self.gpu_racks, self.gpu_due)

    def polled_asic_racks(self) -> list[AsicRack]:
        return polled(self.asic_racks, self.asic_due)

    def gpu_step_columns(
        self, rack: int
    ) -> tuple[list[int | None] | None, list[float | None] | None, list[float | None] | None]:
        """``energy_step_mj``, ``step_s`` and ``step_power_w`` of rack number ``rack``."""
        if self.gpu_steps is None:
            return None, None, None
        r = self.gpu_racks[rack]
        return self.gpu_steps.columns(rack, r.start, r.stop)

    def gpu_frames(self) -> list[GpuFrame]:
        g = self.gpu
        out = []
        racks = enumerate(zip(self.gpu_racks, self.gpu_ts, strict=True))
        for i, (r, ts) in polled(racks, self.gpu_due):
            energy_step, step_s, step_power = self.gpu_step_columns(i)
            out.append(
                GpuFrame(
                    site_id=self.site_id,
                    source_id=r.source_id,
                    ts_s=ts,
                    seq=self.seq,
                    node_id=r.node_ids,
                    gpu_index=r.gpu_index,
                    power_w=g.power_w[r.start : r.stop],
                    energy_mj=g.energy_mj[r.start : r.stop],
                    util_pct=g.util_pct[r.start : r.stop],
                    temp_c=g.temp_c[r.start : r.stop],
                    power_limit_w=r.power_limit_w,
                    sm_clock_mhz=g.sm_clock_mhz[r.start : r.stop],
                    throttle_reasons=g.throttle_reasons[r.start : r.stop],
                    energy_step_mj=energy_step,
                    step_s=step_s,
                    step_power_w=step_power,
                )
            )
        return out

    def asic_frames(self) -> list[AsicFrame]:
        a = self.asic
        states: list[AsicState] = a.state  # type: ignore[assignment]
        return [
            AsicFrame(
                site_id=self.site_id,
                source_id=r.source_id,
                ts_s=ts,
                seq=self.seq,
                miner_id=r.miner_ids,
                model=r.models,
                hashrate_ths=a.hashrate_ths[r.start : r.stop],
                power_w=a.power_w[r.start : r.stop],
                temp_c=a.temp_c[r.start : r.stop],
                fan_rpm=a.fan_rpm[r.start : r.stop],
                state=states[r.start : r.stop],
                power_limit_w=a.power_limit_w[r.start : r.stop],
                error=r.error,
            )
            for r, ts in polled(zip(self.asic_racks, self.asic_ts, strict=True), self.asic_due)
        ]


def polled(items: Iterable[T], due: list[bool] | None) -> list[T]:
    return list(items) if due is None else [x for x, d in zip(items, due, strict=True) if d]


class SiteModel:
    def __init__(
        self,
        site: SiteConfig,
        sim: SimSpec | None = None,
        faults: FaultConfig | None = None,
        templates: ShapeTemplates | None = None,
    ) -> None:
        self.site = site
        self.sim = sim or SimSpec()
        self.faults = faults or FaultConfig()
        self.faults.check()
        rng = np.random.default_rng(self.sim.seed)
        self.rng = rng
        self.gpus = GpuFleet(site, self.sim, templates or load_templates(), rng)
        self.asics = AsicFleet(site, self.sim, rng)
        self.meter_ids = [m.meter_id for m in site.meters]
        self.meter_roles = [m.role for m in site.meters]
        self.meter_wh: F64 = np.floor(rng.uniform(1e8, 1e10, len(self.meter_ids)))
        self.seq = 0
        self.meter_resets = 0
        # Skewed clocks: a fixed offset per source, drawn once.
        f = self.faults
        self.gpu_skew = self._skews(len(self.gpus.racks))
        self.asic_skew = self._skews(len(self.asics.racks))
        self.meter_skew = float(self._skews(1)[0])
        self._loss_k = LOSS_AT_LIMIT / (site.interconnection_limit_mw * 1e6)
        self._resets_per_s = f.resets_per_hour / 3600.0
        # Poll cadences draw from their own generator: the default (every second) draws
        # nothing, so frames stay what they were.
        sim, poll_rng = self.sim, np.random.default_rng(self.sim.seed + 7919)
        cadence = {"jitter_s": sim.poll_jitter_s, "missed_share": sim.missed_poll_share}
        self.gpu_cadence = Cadence(len(self.gpus.racks), sim.gpu_period_s, rng=poll_rng, **cadence)
        self.asic_cadence = Cadence(
            len(self.asics.racks), sim.asic_period_s, rng=poll_rng, **cadence
        )
        self.meter_cadence = Cadence(1, sim.meter_period_s, rng=poll_rng, **cadence)

    def _skews(self, n: int) -> F64:
        f = self.faults
        skewed = self.rng.random(n) < f.skew_share
        sign = np.where(self.rng.random(n) < 0.5, -1.0, 1.0)
        return np.where(skewed, sign * f.skew_s, 0.0)

    @property
    def gpu_racks(self) -> list[GpuRack]:
        return self.gpus.racks

    @property
    def asic_racks(self) -> list[AsicRack]:
        return self.asics.racks

    def command(self, cmd: MinerCommand, now_s: float) -> CommandResult:
        """Apply a miner command received at simulated time ``now_s``."""
        return self.asics.command(cmd, now_s)

    def step(self, t_s: float) -> Step:
        """Advance to the second ending at ``t_s`` and return what the collectors report."""
        self.seq += 1
        gpu = self.gpus.step(t_s, self._resets_per_s)
        asic = self.asics.step(t_s)
        ai = float(self.gpus.node_power_w().sum())
        mining = float(self.asics.power_w.sum())
        it = ai + mining
        day = math.sin(2 * math.pi * ((t_s % 86400) / 86400 - 0.375))  # warmest ~15:00 UTC+
        cooling = self.site.overhead_fraction * it * (1 + COOLING_SWING * day)
        overhead = self.site.overhead_fixed_mw * 1e6 + cooling
        before = it + overhead
        truth = Truth(ai, mining, overhead, self._loss_k * before * before)
        # The draws in the order they always had (the poll cadences share a generator).
        gpu_ts = self.gpu_cadence.stamps(t_s + self.gpu_skew)
        asic_ts = self.asic_cadence.stamps(t_s + self.asic_skew)
        meter = self._meters(t_s, truth, cooling)
        gpu_due = self.gpu_cadence.due(t_s)
        return Step(
            site_id=self.site.site_id,
            ts_s=t_s,
            seq=self.seq,
            gpu=gpu,
            gpu_racks=self.gpus.racks,
            gpu_ts=gpu_ts.tolist(),
            asic=asic,
            asic_racks=self.asics.racks,
            asic_ts=asic_ts.tolist(),
            meter=meter,
            truth=truth,
            gpu_due=gpu_due,
            asic_due=self.asic_cadence.due(t_s),
            meter_due=self.meter_cadence.due(t_s) in (None, [True]),
            gpu_steps=self.gpus.poll(gpu_due, gpu_ts),
        )

    def _meters(self, t_s: float, truth: Truth, cooling: float) -> MeterFrame:
        by_role = {
            "poi": truth.poi_w,
            "ai": truth.ai_w,
            "mining": truth.mining_w,
            "aux": cooling,
        }
        true_w = np.asarray([by_role[r] for r in self.meter_roles], dtype=np.float64)
        # Registers integrate the true power; the instantaneous reading carries the noise.
        self.meter_wh += true_w / 3600.0
        if self._resets_per_s > 0:
            hit = self.rng.random(len(true_w)) < self._resets_per_s
            self.meter_wh[hit] = 0.0
            self.meter_resets += int(hit.sum())
        shown = true_w * (1 + METER_NOISE * self.rng.standard_normal(len(true_w)))
        return MeterFrame(
            site_id=self.site.site_id,
            source_id=self.sim.meter_source_id,
            ts_s=float(self.meter_cadence.stamps(np.asarray([t_s + self.meter_skew]))[0]),
            seq=self.seq,
            meter_id=list(self.meter_ids),
            power_w=np.round(shown, 1).tolist(),
            energy_wh=np.round(self.meter_wh, 3).tolist(),
        )
