"""GPU nodes, vectorised over every GPU of the site: power follows per-job shape series."""

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
        self.resets = 0

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
            energy_mj=self.energy_mj.astype(np.int64).tolist(),
            util_pct=util.tolist(),
            temp_c=temp.tolist(),
            sm_clock_mhz=clock.tolist(),
            throttle_reasons=throttle.tolist(),
        )

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
            self.resets += 1

    def node_power_w(self) -> F64:
        """Wall power of each node in the last step: its GPUs plus CPUs, NICs and fans."""
        gpu = np.bincount(self.gpu_node, weights=self.last_power_w, minlength=self.n_nodes)
        return np.asarray(gpu + self.node_overhead_w, dtype=np.float64)
