"""GPU readings through NVML (nvidia-ml-py, imported as ``pynvml``), framed per node.

The NVML module is passed in (``nvml``), so the framing is tested with a fake that has
pynvml's function names; ``load_nvml`` imports the real one and says clearly when the
library or driver is missing. Per GPU and sample:

- ``power_w``: ``nvmlDeviceGetPowerUsage`` (mW; a 1 s moving average on Ampere and newer);
  if unsupported, the ``POWER_AVERAGE`` field. A GPU that reports neither is an error.
- ``power_instant_w``: the ``POWER_INSTANT`` field value where the driver has it (R535+).
- ``energy_mj``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load; Volta+).
- utilisation, GPU temperature, SM clock, enforced power limit, clocks-event (throttle)
  reasons. Anything unsupported is ``None``; other NVML errors on optional fields too, and
  they are counted in ``errors`` so a probe can report them.

Each frame also carries every GPU's counter step since the sampler's previous frame
(``energy_step_mj``, ``step_s``, ``step_power_w``; ``streams.collectors.gpu_steps``): the
sampler is the one place that knows a GPU's previous reading. The first frame, and a GPU
whose counter is missing or went back (driver reload), have none.
"""

from __future__ import annotations

import importlib
from collections import Counter
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from schemas.telemetry import GpuFrame
from streams.collectors.gpu_steps import StepTracker
from streams.errors import TerminalError


class NvmlUnavailable(TerminalError, RuntimeError):
    """NVML cannot be used here (no nvidia-ml-py, no driver, or no GPU); not retryable."""


class NvmlReadError(TerminalError, RuntimeError):
    """A required reading (power) failed for a GPU; names the GPU and the NVML error."""


def load_nvml() -> ModuleType:
    """Import pynvml and initialise NVML, or raise ``NvmlUnavailable`` saying why."""
    try:
        nvml = importlib.import_module("pynvml")
    except ImportError as exc:
        raise NvmlUnavailable("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from exc
    try:
        nvml.nvmlInit()
    except Exception as exc:  # pynvml raises NVMLError subclasses built at run time
        raise NvmlUnavailable(
            f"NVML did not initialise ({type(exc).__name__}: {exc}): is the NVIDIA driver "
            "installed and a GPU visible to this process?"
        ) from exc
    return nvml


@dataclass(frozen=True, slots=True)
class GpuReading:
    index: int
    power_w: float
    energy_mj: int | None
    power_instant_w: float | None
    util_pct: float | None
    temp_c: float | None
    sm_clock_mhz: int | None
    power_limit_w: float | None
    throttle_reasons: int | None


class NvmlSampler:
    """Reads every GPU of this node; ``frame`` turns one sample into a ``GpuFrame``."""

    def __init__(self, nvml: Any, node_id: str, site_id: str) -> None:
        self.nvml = nvml
        self.node_id = node_id
        self.site_id = site_id
        self.errors: Counter[str] = Counter()
        count = int(nvml.nvmlDeviceGetCount())
        if count == 0:
            raise NvmlUnavailable("NVML sees no GPU on this node")
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self._not_supported = getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3)
        self._field_ids = [
            getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", 186),
            getattr(nvml, "NVML_FI_DEV_POWER_AVERAGE", 185),
        ]
        self._events = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        self._steps = StepTracker()

    def names(self) -> list[str]:
        out = []
        for h in self.handles:
            name = self.nvml.nvmlDeviceGetName(h)
            out.append(name.decode() if isinstance(name, bytes) else str(name))
        return out

    def _opt(self, what: str, fn: Any, *args: Any) -> Any:
        if fn is None:
            return None
        try:
            return fn(*args)
        except self.nvml.NVMLError as exc:
            if getattr(exc, "value", None) != self._not_supported:
                self.errors[f"{what}: {exc}"] += 1
            return None

    def _fields(self, handle: Any) -> tuple[float | None, float | None]:
        """POWER_INSTANT and POWER_AVERAGE in W, None where the driver lacks them."""
        values = self._opt(
            "field values", self.nvml.nvmlDeviceGetFieldValues, handle, self._field_ids
        )
        if values is None:
            return None, None
        out: list[float | None] = []
        for v in values:
            ok = int(getattr(v, "nvmlReturn", 1)) == 0
            out.append(float(v.value.uiVal) / 1000.0 if ok else None)
        return out[0], out[1]

    def read(self) -> list[GpuReading]:
        n = self.nvml
        readings = []
        for i, h in enumerate(self.handles):
            instant_w, average_w = self._fields(h)
            mw = self._opt("power", n.nvmlDeviceGetPowerUsage, h)
            power_w = float(mw) / 1000.0 if mw is not None else average_w
            if power_w is None:
                raise NvmlReadError(
                    f"GPU {i} on {self.node_id}: NVML gives no power reading "
                    "(nvmlDeviceGetPowerUsage and POWER_AVERAGE unsupported)"
                )
            energy = self._opt("energy", n.nvmlDeviceGetTotalEnergyConsumption, h)
            util = self._opt("utilization", n.nvmlDeviceGetUtilizationRates, h)
            temp = self._opt(
                "temperature", n.nvmlDeviceGetTemperature, h, getattr(n, "NVML_TEMPERATURE_GPU", 0)
            )
            clock = self._opt(
                "sm clock", n.nvmlDeviceGetClockInfo, h, getattr(n, "NVML_CLOCK_SM", 1)
            )
            limit = self._opt("power limit", n.nvmlDeviceGetEnforcedPowerLimit, h)
            events = self._opt("clocks event reasons", self._events, h)
            readings.append(
                GpuReading(
                    index=i,
                    power_w=power_w,
                    energy_mj=None if energy is None else int(energy),
                    power_instant_w=instant_w,
                    util_pct=None if util is None else float(util.gpu),
                    temp_c=None if temp is None else float(temp),
                    sm_clock_mhz=None if clock is None else int(clock),
                    power_limit_w=None if limit is None else float(limit) / 1000.0,
                    throttle_reasons=None if events is None else int(events),
                )
            )
        return readings

    def frame(self, readings: list[GpuReading], ts_s: float, seq: int) -> GpuFrame:
        """One sample as a frame, with each GPU's counter step since the previous ``frame``.

        Every call is a poll: the next frame's steps start from these readings.
        """
        return self._steps.frame(to_frame(readings, self.site_id, self.node_id, ts_s, seq))


def _col(values: list[Any]) -> list[Any] | None:
    return None if all(v is None for v in values) else values


def to_frame(
    readings: list[GpuReading], site_id: str, node_id: str, ts_s: float, seq: int
) -> GpuFrame:
    """One node's sample as a columnar frame; a column all-None is left out (None).

    No counter steps: one sample has no previous reading (``NvmlSampler.frame`` adds them).
    """
    return GpuFrame(
        site_id=site_id,
        source_id=node_id,
        ts_s=ts_s,
        seq=seq,
        node_id=[node_id] * len(readings),
        gpu_index=[r.index for r in readings],
        power_w=[r.power_w for r in readings],
        energy_mj=[r.energy_mj for r in readings],
        util_pct=_col([r.util_pct for r in readings]),
        temp_c=_col([r.temp_c for r in readings]),
        power_limit_w=_col([r.power_limit_w for r in readings]),
        sm_clock_mhz=_col([r.sm_clock_mhz for r in readings]),
        throttle_reasons=_col([r.throttle_reasons for r in readings]),
        power_instant_w=_col([r.power_instant_w for r in readings]),
    )
