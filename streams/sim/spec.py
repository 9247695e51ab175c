"""What the simulator needs beyond SiteConfig: GPU jobs, rack sizes, miner behaviour.

It is the optional ``[sim]`` table of a site TOML file (``streams.site_file``); the real
pipeline never reads it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

JobKind = Literal["training", "inference"]


class JobSpec(msgspec.Struct, kw_only=True, frozen=True):
    """A job running on a contiguous block of one pool's nodes; its nodes move together."""

    name: str
    pool: str
    nodes: int
    kind: JobKind = "training"
    checkpoint_every_s: float = 900.0
    """Training only: seconds between checkpoint / evaluation dips."""


class AiSpike(msgspec.Struct, kw_only=True, frozen=True):
    """A window in which the named pools' GPUs all run flat out (a new job lands, an eval
    sweep starts): their spikes add up at the meter and eat into the surplus."""

    start_s: float
    """UTC seconds."""
    duration_s: float
    pools: list[str] = []
    """Pools affected; empty means every pool."""
    fraction: float = 0.97
    """Power fraction of the limit the GPUs run at, at least."""


class SimSpec(msgspec.Struct, kw_only=True, frozen=True):
    jobs: list[JobSpec] = []
    """Nodes of a pool not covered by a job run one default job per pool (training unless
    the pool name contains ``infer``)."""
    nodes_per_rack: int = 8
    """GPU nodes per GpuFrame (8 nodes x 8 GPUs = 64 readings)."""
    miners_per_rack: int = 150
    """Miners per AsicFrame (one container or rack of one model)."""
    late_share: float = 0.03
    """Share of miners that act on a command late (``late_delay_s``)."""
    never_share: float = 0.01
    """Share of miners that never act on a command (stock firmware ignoring stop/start)."""
    late_delay_s: float = 20.0
    meter_source_id: str = "modbus-gw-1"
    seed: int = 1
    ai_spikes: list[AiSpike] = []
    """Scheduled AI load spikes (tests and the `spillway run` day)."""
    gpu_period_s: int = 1
    """Seconds between two polls of a GPU source (NVML: 1)."""
    asic_period_s: int = 1
    """Seconds between two polls of an ASIC source (the ASIC collector's default is 5, a
    replayed scrape 60); 1 keeps every test's frames as they were."""
    meter_period_s: int = 1
    """Seconds between two polls of the meter gateway."""
    poll_jitter_s: float = 0.0
    """A poll's stamp is late by up to this much, in [0, 1)."""
    missed_poll_share: float = 0.0
    """Share of due polls lost (collector timeouts), per source kind and poll."""
