"""GPU nodes, vectorised over every GPU of the site: power follows per-job shape series.

Each rack's collector also knows its GPUs' previous poll, so its frames carry each GPU's
energy-counter step since then (``GpuFleet.poll``; ``streams.collectors.gpu_steps``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.site import SiteConfig
from streams.decisions.fleet import gpu_node_id
from streams.sim.shapes import ShapeTemplates, job_series
from streams.sim.spec import JobKind, JobSpec, SimSpec

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
SERIES_S = 3600
"""Length of each job's power loop; it is indexed by UTC second, so a day replays exactly."""


@dataclass(frozen=True)
class GpuRack:
    """One GpuFrame's worth of GPUs: ``[start, stop)`` in the flat GPU arrays."""

    source_id: str
    pool: str
    start: int
    stop: int
    node_ids: list[str]
    """One entry per GPU (the frame's ``node_id`` column)."""
    gpu_index: list[int]
    power_limit_w: list[float | None]


@dataclass(frozen=True)
class Job:
    name: str
    pool: str
    kind: JobKind
    first_node: int
    nodes: int


def plan_jobs(site: SiteConfig, sim: SimSpec) -> list[Job]:
    """Jobs on contiguous node blocks; nodes no job claims form one default job per pool."""
    jobs: list[Job] = []
    offset = 0
    for pool in site.gpu_pools:
        used = 0
        listed: list[JobSpec] = [j for j in sim.jobs if j.pool == pool.name]
        for j in listed:
            jobs.append(Job(j.name, pool.name, j.kind, offset + used, j.nodes))
            used += j.nodes
        if used < pool.nodes:
            kind: JobKind = "inference" if "infer" in pool.name.lower() else "training"
            jobs.append(
                Job(f"{pool.name}-default", pool.name, kind, offset + used, pool.nodes - used)
            )
        offset += pool.nodes
    return jobs


@dataclass
class GpuColumns:
    """One second of every GPU's readings, as Python lists ready to slice into frames."""

    power_w: list[float]
    energy_mj: list[int | None]
    util_pct: list[float | None]
    temp_c: list[float | None]
    sm_clock_mhz: list[int | None]
    throttle_reasons: list[int | None]


@dataclass
class GpuSteps:
    """Each GPU's counter step since its rack's previous poll, for the racks polled this
    second (``schemas.telemetry.GpuFrame``'s ``energy_step_mj``, ``step_s``, ``step_power_w``).

    Kept as arrays and turned into lists only for the frames built (``columns``): at a 5 s
    cadence four racks in five are not polled. A rack's GPUs are polled together, so they
    share its previous poll's stamp and the span since.
    """

    energy_mj: I64
    """Per GPU: its counter minus its counter at its rack's previous poll."""
    ok: npt.NDArray[np.bool_]
    """Per GPU: it has a clean step (polled now and before, no counter reset since)."""
    span_s: list[float]
    """Per rack: time since its previous poll (meaningless where ``rack_has`` is False)."""
    prev_power_w: F64
    """Per GPU: its ``power_w`` at its rack's previous poll."""
    rack_has: list[bool]
    """Per rack: polled, and some GPU has a step (its frame carries the columns)."""
    rack_full: list[bool]
    """Per rack: every GPU has a step (no None to put in)."""
    poll_id: int = 0
    """This poll's number (the fleet counts its polls from 1)."""
    prev_poll: list[int] | None = None
    """Per rack: the number of its previous poll (0: none), whose ``power_w`` is
    ``prev_power_w``: an encoder that kept that poll's encoded column can reuse it."""

    def span(self, rack: int, n: int) -> list[float | None]:
        """The ``step_s`` column of rack number ``rack`` (``n`` GPUs), every GPU stepping."""
        s = self.span_s[rack]
        # Whole seconds as ints: msgspec writes "5" ten times faster than "5.0" (same value).
        return [int(s) if s.is_integer() else s] * n

    def columns(
        self, rack: int, start: int, stop: int
    ) -> tuple[list[int | None] | None, list[float | None] | None, list[float | None] | None]:
        """The three columns of rack number ``rack`` (GPUs ``[start, stop)``); all None where
        no GPU of it has a step, and None for a GPU without one (counter reset) otherwise."""
        if not self.rack_has[rack]:
            return None, None, None
        energy: list[int | None] = self.energy_mj[start:stop].tolist()
        span = self.span(rack, stop - start)
        power: list[float | None] = self.prev_power_w[start:stop].tolist()
        if not self.rack_full[rack]:
            for i in np.flatnonzero(~self.ok[start:stop]).tolist():
                energy[i] = span[i] = power[i] = None
        return energy, span, power


class GpuFleet:
    def __init__(
        self, site: SiteConfig, sim: SimSpec, tpl: ShapeTemplates, rng: np.random.Generator
    ) -> None:
        self.rng = rng
        self.tpl = tpl
        self.jobs = plan_jobs(site, sim)
        node_pool: list[int] = []
        gpus_per_node: list[int] = []
        self.racks: list[GpuRack] = []
        limits: list[float] = []
        overhead: list[float] = []
        gpu = 0
        for pi, pool in enumerate(site.gpu_pools):
            for r0 in range(0, pool.nodes, sim.nodes_per_rack):
                ids: list[str] = []
                idx: list[int] = []
                start = gpu
                for i in range(r0, min(pool.nodes, r0 + sim.nodes_per_rack)):
                    nid = gpu_node_id(site.site_id, pool.name, i)
                    ids.extend([nid] * pool.gpus_per_node)
                    idx.extend(range(pool.gpus_per_node))
                    node_pool.append(pi)
                    gpus_per_node.append(pool.gpus_per_node)
                    overhead.append(pool.node_overhead_w)
                    gpu += pool.gpus_per_node
                lim: list[float | None] = [pool.gpu_power_limit_w] * (gpu - start)
                limits.extend([pool.gpu_power_limit_w] * (gpu - start))
                self.racks.append(
                    GpuRack(
                        source_id=f"{site.site_id}-{pool.name}-rack{r0 // sim.nodes_per_rack:04d}",
                        pool=pool.name,
                        start=start,
                        stop=gpu,
                        node_ids=ids,
                        gpu_index=idx,
                        power_limit_w=lim,
                    )
                )
        self.n_gpus = gpu
        self.n_nodes = len(node_pool)
        self.spikes = sim.ai_spikes
        self.pool_names = [p.name for p in site.gpu_pools]
        self.gpu_node: I64 = np.repeat(np.arange(self.n_nodes), gpus_per_node)
        self.gpu_slot: I64 = np.concatenate([np.arange(g) for g in gpus_per_node]).astype(np.int64)
        self.node_first_gpu: I64 = np.concatenate([[0], np.cumsum(gpus_per_node)[:-1]]).astype(
            np.int64
        )
        self.node_gpus: I64 = np.asarray(gpus_per_node, dtype=np.int64)
        self.node_overhead_w: F64 = np.asarray(overhead, dtype=np.float64)
        self.limit_w: F64 = np.asarray(limits, dtype=np.float64)
        node_job = np.zeros(self.n_nodes, dtype=np.int64)
        series = []
        for ji, job in enumerate(self.jobs):
            node_job[job.first_node : job.first_node + job.nodes] = ji
            spec = next((j for j in sim.jobs if j.name == job.name), None)
            every = spec.checkpoint_every_s if spec else 900.0
            seed = sim.seed * 1000 + ji
            series.append(
                job_series(tpl, job.kind, seed=seed, length_s=SERIES_S, checkpoint_every_s=every)
            )
        self.node_job = node_job
        self.gpu_job: I64 = node_job[self.gpu_node]
        self.gpu_pool: I64 = np.asarray(node_pool, dtype=np.int64)[self.gpu_node]
        self.series: F64 = np.stack(series) if series else np.zeros((0, SERIES_S))
        spread = np.asarray(tpl.gpu_spread)
        # A GPU keeps its spread for life: silicon, cooling position.
        self.spread: F64 = spread[self.gpu_slot % len(spread)] * rng.normal(1.0, 0.01, self.n_gpus)
        # Counters start where a driver loaded some days ago.
        self.energy_mj: F64 = np.floor(rng.uniform(1e10, 1e12, self.n_gpus))
        self.temp: F64 = 35.0 + 25.0 * np.asarray(self.series[self.gpu_job, 0] if series else 0)
        self.last_power_w: F64 = np.zeros(self.n_gpus)
        self.counter_mj: I64 = self.energy_mj.astype(np.int64)
        """The counters as reported (whole mJ) after the last step."""
        self.resets = 0
        # Each GPU's rack's previous poll: its counters and power, the rack's stamp (NaN:
        # never polled) and the poll's number; counters reset since then get no step.
        self.gpu_rack: I64 = np.repeat(
            np.arange(len(self.racks)), [r.stop - r.start for r in self.racks]
        ).astype(np.int64)
        self._rack_start: I64 = np.asarray([r.start for r in self.racks], dtype=np.int64)
        self._polled_mj: I64 = np.zeros(self.n_gpus, dtype=np.int64)
        self._polled_ts: F64 = np.full(len(self.racks), np.nan)
        self._polled_w: F64 = np.zeros(self.n_gpus)
        self._polled_id: I64 = np.zeros(len(self.racks), dtype=np.int64)
        self._polls = 0
        self._reset_since_poll = np.zeros(self.n_gpus, dtype=bool)

    def job_fraction(self, t_s: float) -> F64:
        """Power fraction of the limit each job runs at during second ``t_s``."""
        return np.asarray(self.series[:, int(t_s) % SERIES_S], dtype=np.float64)

    def step(self, t_s: float, resets_per_s: float) -> GpuColumns:
        frac = self.job_fraction(t_s)[self.gpu_job] * self.spread
        frac = frac * (1.0 + 0.008 * self.rng.standard_normal(self.n_gpus))
        for spike in self.spikes:
            if spike.start_s <= t_s < spike.start_s + spike.duration_s:
                hit = self._spike_mask(spike.pools)
                frac = np.where(hit, np.maximum(frac, spike.fraction), frac)
        np.clip(frac, self.tpl.idle * 0.9, 1.0, out=frac)
        # NVML reports mW: keep 0.1 W resolution so the JSON stays short.
        power = np.round(frac * self.limit_w, 1)
        self.last_power_w = power
        if resets_per_s > 0:
            self._reset_counters(resets_per_s)
        # The 1 s average power times 1 s is the energy of the second: counter in mJ.
        self.energy_mj += power * 1000.0
        self.counter_mj = self.energy_mj.astype(np.int64)
        busy = (frac - self.tpl.idle) / (0.9 - self.tpl.idle)
        # Whole numbers as ints: "100" not "100.0" on the wire (the float columns decode them).
        util = np.round(np.clip(busy, 0.0, 1.0) * 100.0).astype(np.int64)
        # Die temperature lags power with a ~10 s time constant (the trace: 38 C idle, 64 C).
        self.temp += (33.0 + 45.0 * frac - self.temp) * 0.1
        temp = np.round(self.temp).astype(np.int64)
        clock = np.where(frac > 0.5, 1980 - (frac - 0.5) * 600, 1980).astype(np.int64)
        # NVML clocks-event reasons: 0x1 GPU idle, 0x4 SW power cap.
        throttle = np.where(frac > 0.85, 4, np.where(frac < 0.15, 1, 0))
        return GpuColumns(
            power_w=power.tolist(),
            energy_mj=self.counter_mj.tolist(),
            util_pct=util.tolist(),
            temp_c=temp.tolist(),
            sm_clock_mhz=clock.tolist(),
            throttle_reasons=throttle.tolist(),
        )

    def poll(self, due: list[bool] | None, ts_s: F64) -> GpuSteps:
        """The racks ``due`` (None: all) poll the last step at their stamps ``ts_s`` (one per
        rack): each polled GPU's step since its rack's previous poll, which this poll replaces.

        No step for a GPU never polled before, whose counter was reset since (or went back),
        or whose rack's stamp is not after the previous one.
        """
        n_racks = len(self.racks)
        stamps = np.asarray(ts_s, dtype=np.float64)
        span = stamps - self._polled_ts
        with np.errstate(invalid="ignore"):
            rack_ok = span > 0.0  # NaN (never polled): False
        rack_due = np.ones(n_racks, dtype=bool) if due is None else np.asarray(due, dtype=bool)
        rack_ok &= rack_due
        energy = self.counter_mj - self._polled_mj
        ok = rack_ok[self.gpu_rack] & (energy >= 0) & ~self._reset_since_poll
        if self.n_gpus:
            rack_has = np.logical_or.reduceat(ok, self._rack_start).tolist()
            rack_full = np.logical_and.reduceat(ok, self._rack_start).tolist()
        else:
            rack_has = rack_full = [False] * n_racks
        self._polls += 1
        steps = GpuSteps(
            energy,
            ok,
            span.tolist(),
            self._polled_w,
            rack_has,
            rack_full,
            poll_id=self._polls,
            prev_poll=self._polled_id.tolist(),
        )
        # New arrays, not updates in place: ``steps`` keeps the previous poll's.
        if due is None:
            self._polled_mj = self.counter_mj.copy()
            self._polled_w = self.last_power_w.copy()
            self._polled_ts = stamps.copy()
            self._polled_id[:] = self._polls
            self._reset_since_poll[:] = False
        else:
            polled = rack_due[self.gpu_rack]
            self._polled_mj = np.where(polled, self.counter_mj, self._polled_mj)
            self._polled_w = np.where(polled, self.last_power_w, self._polled_w)
            self._polled_ts = np.where(rack_due, stamps, self._polled_ts)
            self._polled_id[rack_due] = self._polls
            self._reset_since_poll &= ~polled
        return steps

    def _spike_mask(self, pools: list[str]) -> npt.NDArray[np.bool_]:
        if not pools:
            return np.ones(self.n_gpus, dtype=bool)
        wanted = [i for i, name in enumerate(self.pool_names) if name in pools]
        return np.isin(self.gpu_pool, wanted)

    def _reset_counters(self, per_s: float) -> None:
        n = int(self.rng.binomial(self.n_nodes, min(1.0, per_s)))
        for node in self.rng.choice(self.n_nodes, size=n, replace=False):
            a = int(self.node_first_gpu[node])
            self.energy_mj[a : a + int(self.node_gpus[node])] = 0.0
            self._reset_since_poll[a : a + int(self.node_gpus[node])] = True
            self.resets += 1

    def node_power_w(self) -> F64:
        """Wall power of each node in the last step: its GPUs plus CPUs, NICs and fans."""
        gpu = np.bincount(self.gpu_node, weights=self.last_power_w, minlength=self.n_nodes)
        return np.asarray(gpu + self.node_overhead_w, dtype=np.float64)
