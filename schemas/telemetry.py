"""Telemetry frames: one message per node, rack or scrape, carrying many readings.

Frames are columnar (one list per field, all of equal length, like an Arrow record batch):
decoding a frame is one C call per column instead of one Python object per reading, which
is what lets one process take 300,000 readings a second.

Frame size matters as much: the stream processor pays a fixed cost per Kafka message (about
half a millisecond in faust here), so a frame should carry a few hundred readings. The
reference site sends one GpuFrame per DGX SuperPOD scalable unit (32 nodes, 256 GPUs) and one
AsicFrame per container (150 miners): about 1,200 messages for its 277,000 readings a second.
"""

from __future__ import annotations

from typing import Literal

from schemas.base import Message


class MeterFrame(Message, kw_only=True):
    """One scrape of one or more power meters (Modbus, 1 s to 15 min)."""

    site_id: str
    source_id: str
    """Collector or gateway that scraped the meters."""
    ts_s: float
    """Time of the scrape, UTC seconds."""
    seq: int
    """Per-source sequence number; gaps and repeats show lost or duplicated frames."""
    meter_id: list[str]
    power_w: list[float]
    """Active power, W (import positive)."""
    energy_wh: list[float | None]
    """Import energy register, Wh (monotonic until a reset); None when not read."""


class GpuFrame(Message, kw_only=True):
    """NVML/DCGM readings of the GPUs of one node or rack."""

    site_id: str
    source_id: str
    """Node or rack that the frame covers."""
    ts_s: float
    seq: int
    node_id: list[str]
    gpu_index: list[int]
    power_w: list[float]
    """Board power averaged over 1 s (NVML ``nvmlDeviceGetPowerUsage``), W."""
    energy_mj: list[int | None]
    """Total energy since driver load (NVML ``nvmlDeviceGetTotalEnergyConsumption``), mJ."""
    util_pct: list[float | None] | None = None
    temp_c: list[float | None] | None = None
    power_limit_w: list[float | None] | None = None
    sm_clock_mhz: list[int | None] | None = None
    throttle_reasons: list[int | None] | None = None
    """NVML clocks-event-reasons bit mask."""
    power_instant_w: list[float | None] | None = None
    """Instantaneous board power (NVML field ``POWER_INSTANT``), W; None where unsupported."""
    energy_step_mj: list[int | None] | None = None
    """This GPU's ``energy_mj`` minus its ``energy_mj`` in the same source's previous poll,
    mJ: the energy the GPU itself counted between the two polls, whatever the power did in
    between. None where there is no clean step: the GPU was not read then (it joined, or the
    collector just started), or the counter went back (driver reload). Set by the collector,
    the one place that knows a GPU's previous reading (``docs/cadence.md``)."""
    step_s: list[float | None] | None = None
    """Time since that previous poll (this ``ts_s`` minus its ``ts_s``), s; None with
    ``energy_step_mj``."""
    step_power_w: list[float | None] | None = None
    """This GPU's ``power_w`` in that previous poll, W: what sample-and-hold holds over the
    step, which the counter's energy replaces; None with ``energy_step_mj``."""


AsicState = Literal["hashing", "ramping", "sleeping", "offline", "unknown"]


class AsicFrame(Message, kw_only=True):
    """One scrape of the miners of a rack or container (cgminer-style APIs)."""

    site_id: str
    source_id: str
    ts_s: float
    seq: int
    miner_id: list[str]
    model: list[str]
    hashrate_ths: list[float]
    """Reported hashrate (5 s average where the firmware gives it), TH/s."""
    power_w: list[float | None]
    """Reported wall power, W. Stock firmware often reports none: None, never a guess."""
    temp_c: list[float | None]
    """Hottest chip or board temperature, C."""
    fan_rpm: list[int | None]
    """Slowest fan, RPM."""
    state: list[AsicState]
    power_limit_w: list[float | None] | None = None
    error: list[str | None] | None = None
    """Why a miner is ``offline``/``unknown`` (timeout, refused, garbled reply); None if fine."""
