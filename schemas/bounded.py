"""Telemetry frames with their per-reading bounds in the type, checked by msgspec in C.

A 400 MW site sends 300,000 readings a second; checking each value in Python took most of
stage 1's time. These subclasses carry the same bounds as ``schemas.validation``'s
per-reading checks as ``msgspec.Meta`` constraints, so a good frame is checked while it is
decoded. They are a fast path only: a frame they refuse is decoded again with the plain
contract and judged by the Python checks, which give the rejection its kind and reason
(``Contract.decode``). Anything they accept, the Python checks accept too (tested in
``tests/platform/test_bounded.py``); the JSON Schemas stay those of the plain contracts.
"""

from __future__ import annotations

import sys
from typing import Annotated

from msgspec import Meta

from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame

MAX_POWER_W = 2_000_000_000.0
"""No single reading is more than 2 GW: anything larger is a unit or encoding error."""
GPU_MAX_W = 5_000.0
ASIC_MAX_W = 50_000.0
ASIC_MAX_THS = 10_000.0

Finite = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
"""Any finite float: infinities fail the bounds (JSON itself has no NaN)."""
NonNegative = Annotated[float, Meta(ge=0.0, le=sys.float_info.max)]
GpuWatts = Annotated[float, Meta(ge=0.0, le=GPU_MAX_W)]
AsicWatts = Annotated[float, Meta(ge=0.0, le=ASIC_MAX_W)]
MeterWatts = Annotated[float, Meta(ge=-MAX_POWER_W, le=MAX_POWER_W)]
Percent = Annotated[float, Meta(ge=0.0, le=100.0)]
Hashrate = Annotated[float, Meta(ge=0.0, le=ASIC_MAX_THS)]
Counter64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]
"""An energy counter. msgspec bounds stop at int64 (and would take any larger integer
without one); counters from 2**63 to 2**64 - 1 take the full path, which accepts them."""


class BoundedMeterFrame(MeterFrame, kw_only=True):
    power_w: list[MeterWatts]
    energy_wh: list[NonNegative | None]


class BoundedGpuFrame(GpuFrame, kw_only=True):
    power_w: list[GpuWatts]
    energy_mj: list[Counter64 | None]
    util_pct: list[Percent | None] | None = None
    temp_c: list[Finite | None] | None = None
    power_instant_w: list[GpuWatts | None] | None = None
    energy_step_mj: list[Counter64 | None] | None = None
    step_s: list[NonNegative | None] | None = None
    step_power_w: list[GpuWatts | None] | None = None


class BoundedAsicFrame(AsicFrame, kw_only=True):
    hashrate_ths: list[Hashrate]
    power_w: list[AsicWatts | None]
    temp_c: list[Finite | None]
