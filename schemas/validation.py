"""Decode and validate raw message bytes against a contract: pure, no I/O.

``decode`` returns either the typed message or a ``Rejection`` saying why (the caller sends
rejections to the dead-letter topic). It never raises on bad input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from schemas.base import SCHEMA_VERSION, Message
from schemas.bounded import (
    ASIC_MAX_THS,
    ASIC_MAX_W,
    GPU_MAX_W,
    MAX_POWER_W,
    BoundedAsicFrame,
    BoundedGpuFrame,
    BoundedMeterFrame,
)
from schemas.deadletter import RejectKind
from schemas.events import SitePower
from schemas.grid import (
    CarbonIntensity,
    DispatchSignal,
    FrequencySample,
    HashpriceSignal,
    PriceSignal,
)
from schemas.market_bounds import Market, price_problem
from schemas.packed import PACKABLE, is_packed, to_fields, unpack
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame

M = TypeVar("M", bound=Message)

PRICE_MARKET: dict[str, Market] = {"rt": "RTM", "da": "DAM", "sced": "SCED"}
"""``PriceSignal.kind`` -> the market whose dated bounds apply (``schemas.market_bounds``)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    kind: RejectKind
    reason: str


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that depend on settings and on the clock."""

    now_s: float
    max_frame_bytes: int = 1_048_576
    max_clock_skew_s: float = 300.0
    max_age_s: float = 7 * 24 * 3600.0


Check = Callable[[Any, Limits], str | None]


class Contract(Generic[M]):
    """A message type plus the semantic checks msgspec's type system cannot express.

    ``fast`` is an optional subclass of ``kind`` whose per-value bounds msgspec checks in C
    (``schemas.bounded``); a message it accepts needs only ``fast_checks`` (the checks its
    type cannot express). Anything else takes the full path, which says why it is rejected.
    """

    def __init__(
        self,
        kind: type[M],
        checks: Sequence[Check] = (),
        *,
        fast: type[M] | None = None,
        fast_checks: Sequence[Check] = (),
    ) -> None:
        self.type = kind
        self.checks = tuple(checks)
        self.fast_checks = tuple(fast_checks)
        self._decoder = msgspec.json.Decoder(kind)
        self._fast = msgspec.json.Decoder(fast) if fast is not None else None
        self._fast_type = fast

    def decode(self, raw: bytes | None, limits: Limits) -> M | Rejection:
        if raw is None:
            return Rejection("schema", "message has no value (tombstone) on a data topic")
        if len(raw) > limits.max_frame_bytes:
            return Rejection(
                "oversized", f"{len(raw)} bytes is over the {limits.max_frame_bytes}-byte limit"
            )
        if is_packed(raw):
            return self._decode_packed(raw, limits)
        if self._fast is not None:
            good = self._fast_decode(raw, limits)
            if good is not None:
                return good
        return self._full_decode(raw, limits)

    def _decode_packed(self, raw: bytes, limits: Limits) -> M | Rejection:
        """A packed frame (``schemas.packed``): typed and checked as its JSON form would be."""
        if self.type not in PACKABLE:
            return Rejection("schema", f"{self.type.__name__} has no packed encoding")
        try:
            fields = to_fields(unpack(raw), self.type)
        except (msgspec.MsgspecError, ValueError) as exc:
            return Rejection("schema", f"packed {self.type.__name__}: {exc}")
        if self._fast_type is not None:
            try:
                good = self._accept_fast(msgspec.convert(fields, self._fast_type), limits)
            except msgspec.ValidationError:
                good = None
            if good is not None:
                return good
        try:
            msg = msgspec.convert(fields, self.type)
        except msgspec.ValidationError as exc:
            return Rejection("schema", f"{self.type.__name__}: {exc}")
        return self._judge(msg, limits)

    def _fast_decode(self, raw: bytes, limits: Limits) -> M | None:
        """The message if it passes every check on the fast path, else None."""
        assert self._fast is not None
        try:
            msg: M = self._fast.decode(raw)
        except (msgspec.MsgspecError, UnicodeDecodeError, ValueError, RecursionError):
            return None
        return self._accept_fast(msg, limits)

    def _accept_fast(self, msg: M, limits: Limits) -> M | None:
        """A message of the bounded type, if it passes what its type cannot express."""
        if msg.v != SCHEMA_VERSION:
            return None
        for check in self.fast_checks:
            if check(msg, limits):
                return None
        # The bounded subclass only narrows field types (same fields, same slots): hand out
        # the contract's own class so that frames compare equal and read the same everywhere.
        msg.__class__ = self.type
        return msg

    def _full_decode(self, raw: bytes, limits: Limits) -> M | Rejection:
        try:
            msg = self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            return Rejection("schema", f"{self.type.__name__}: {exc}")
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            return Rejection("not_json", f"not valid JSON: {exc}")
        except (ValueError, RecursionError) as exc:  # decoder edge cases: never crash a consumer
            return Rejection("schema", f"{self.type.__name__}: {type(exc).__name__}: {exc}")
        return self._judge(msg, limits)

    def _judge(self, msg: M, limits: Limits) -> M | Rejection:
        if msg.v != SCHEMA_VERSION:
            return Rejection(
                "version", f"schema version v={msg.v}; this consumer reads v={SCHEMA_VERSION}"
            )
        for check in self.checks:
            problem = check(msg, limits)
            if problem:
                return Rejection("validation", problem)
        return msg


# --- reusable checks -----------------------------------------------------------------


def _finite(name: str, values: Sequence[float | int | None]) -> str | None:
    for i, x in enumerate(values):
        if x is not None and not math.isfinite(x):
            return f"{name}[{i}] is {x}, not a finite number"
    return None


def _range(name: str, values: Sequence[float | int | None], lo: float, hi: float) -> str | None:
    present = [x for x in values if x is not None]
    if not present:
        return None
    low, high = min(present), max(present)
    if low < lo or high > hi:
        bad = low if low < lo else high
        return f"{name} has {bad}, outside [{lo}, {hi}]"
    return None


def timestamp_problem(name: str, ts: float, limits: Limits) -> str | None:
    if not math.isfinite(ts):
        return f"{name} is {ts}, not a finite number"
    if ts > limits.now_s + limits.max_clock_skew_s:
        return f"{name}={ts} is {ts - limits.now_s:.0f} s in the future"
    if ts < limits.now_s - limits.max_age_s:
        return f"{name}={ts} is {limits.now_s - ts:.0f} s in the past (limit {limits.max_age_s} s)"
    return None


def _columns(frame: Any, names: Sequence[str]) -> str | None:
    """Every column of a frame has the length of the first; a frame is not empty."""
    first = getattr(frame, names[0])
    if not first:
        return f"frame has no readings ({names[0]} is empty)"
    for name in names[1:]:
        col = getattr(frame, name)
        if col is not None and len(col) != len(first):
            return f"column {name} has {len(col)} values, {names[0]} has {len(first)}"
    return None


def _first(*problems: Callable[[], str | None]) -> str | None:
    for p in problems:
        found = p()
        if found:
            return found
    return None


# --- per-contract checks ----------------------------------------------------------------

_METER_COLS = ("meter_id", "power_w", "energy_wh")
_GPU_COLS = (
    "node_id",
    "gpu_index",
    "power_w",
    "energy_mj",
    "util_pct",
    "temp_c",
    "power_limit_w",
    "sm_clock_mhz",
    "throttle_reasons",
    "power_instant_w",
    "energy_step_mj",
    "step_s",
    "step_power_w",
)
_ASIC_COLS = (
    "miner_id",
    "model",
    "hashrate_ths",
    "power_w",
    "temp_c",
    "fan_rpm",
    "state",
    "power_limit_w",
    "error",
)


def frame_shape(columns: Sequence[str]) -> Check:
    """The checks of a frame that its bounded type cannot express: equal columns, sane time."""

    def check(f: Any, lim: Limits) -> str | None:
        return _columns(f, columns) or timestamp_problem("ts_s", f.ts_s, lim)

    return check


meter_shape = frame_shape(_METER_COLS)
gpu_shape = frame_shape(_GPU_COLS)
asic_shape = frame_shape(_ASIC_COLS)


def check_meter(f: MeterFrame, lim: Limits) -> str | None:
    return _first(
        lambda: meter_shape(f, lim),
        lambda: _finite("power_w", f.power_w),
        lambda: _finite("energy_wh", f.energy_wh),
        lambda: _range("power_w", f.power_w, -MAX_POWER_W, MAX_POWER_W),
        lambda: _range("energy_wh", f.energy_wh, 0.0, math.inf),
    )


def check_gpu(f: GpuFrame, lim: Limits) -> str | None:
    return _first(
        lambda: gpu_shape(f, lim),
        lambda: _finite("power_w", f.power_w),
        lambda: _range("power_w", f.power_w, 0.0, GPU_MAX_W),
        lambda: _finite("power_instant_w", f.power_instant_w or []),
        lambda: _range("power_instant_w", f.power_instant_w or [], 0.0, GPU_MAX_W),
        lambda: _range("energy_mj", f.energy_mj, 0, 2**64 - 1),
        lambda: _range("util_pct", f.util_pct or [], 0.0, 100.0),
        lambda: _finite("temp_c", f.temp_c or []),
        lambda: _range("energy_step_mj", f.energy_step_mj or [], 0, 2**64 - 1),
        lambda: _finite("step_s", f.step_s or []),
        lambda: _range("step_s", f.step_s or [], 0.0, math.inf),
        lambda: _finite("step_power_w", f.step_power_w or []),
        lambda: _range("step_power_w", f.step_power_w or [], 0.0, GPU_MAX_W),
        lambda: _counter_steps(f),
    )


def _counter_steps(f: GpuFrame) -> str | None:
    """A counter step names its span and the power it replaces: all three or none."""
    energy, span, watts = f.energy_step_mj, f.step_s, f.step_power_w
    if energy is None and span is None and watts is None:
        return None
    if energy is None or span is None or watts is None:
        return "energy_step_mj, step_s and step_power_w come together"
    for i, (e, s, p) in enumerate(zip(energy, span, watts, strict=True)):
        if (e is None) != (s is None) or (e is None) != (p is None):
            return f"reading {i}: energy_step_mj, step_s and step_power_w are null together"
    return None


def check_asic(f: AsicFrame, lim: Limits) -> str | None:
    return _first(
        lambda: asic_shape(f, lim),
        lambda: _finite("hashrate_ths", f.hashrate_ths),
        lambda: _range("hashrate_ths", f.hashrate_ths, 0.0, ASIC_MAX_THS),
        lambda: _finite("power_w", f.power_w),
        lambda: _range("power_w", f.power_w, 0.0, ASIC_MAX_W),
        lambda: _finite("temp_c", f.temp_c),
    )


def check_price(p: PriceSignal, lim: Limits) -> str | None:
    """Bounds of the market and date of the interval: the cap in force then, not today's."""
    return _first(
        lambda: _finite("interval_start_s", [p.interval_start_s]),
        lambda: price_problem(p.price_usd_per_mwh, p.interval_start_s, PRICE_MARKET[p.kind]),
        lambda: timestamp_problem("interval_start_s", p.interval_start_s, lim),
        lambda: (
            None
            if p.interval_end_s > p.interval_start_s
            else "interval_end_s is not after interval_start_s"
        ),
    )


def check_dispatch(d: DispatchSignal, lim: Limits) -> str | None:
    return _first(
        lambda: timestamp_problem("start_s", d.start_s, lim),
        lambda: _range("response_deadline_s", [d.response_deadline_s], 0.0, 86_400.0),
        lambda: _range("reduce_to_mw", [d.reduce_to_mw], 0.0, 10_000.0),
        lambda: _range("level", [d.level], 1, 3),
    )


def check_frequency(s: FrequencySample, lim: Limits) -> str | None:
    return _first(
        lambda: timestamp_problem("ts_s", s.ts_s, lim),
        lambda: _range("freq_hz", [s.freq_hz], 45.0, 65.0),
    )


HASHPRICE_MAX_USD_PER_PH_DAY = 100_000.0
"""The settlement gate's bound (``transforms.gates``); network data since 2020 is a few
hundred USD/PH/day at most."""


def check_hashprice(h: HashpriceSignal, lim: Limits) -> str | None:
    """Times on the clock, published no earlier than the period it covers starts, and a
    positive hashprice: zero would put every breakeven at $0/MWh and curtail the fleet."""
    return _first(
        lambda: timestamp_problem("ts_s", h.ts_s, lim),
        lambda: timestamp_problem("published_s", h.published_s, lim),
        lambda: None if h.published_s >= h.ts_s else "published_s is before ts_s",
        lambda: (
            None
            if 0.0 < h.usd_per_ph_day <= HASHPRICE_MAX_USD_PER_PH_DAY
            else f"usd_per_ph_day={h.usd_per_ph_day} is outside (0, {HASHPRICE_MAX_USD_PER_PH_DAY}]"
        ),
    )


def check_carbon(c: CarbonIntensity, lim: Limits) -> str | None:
    return _first(
        lambda: timestamp_problem("hour_start_s", c.hour_start_s, lim),
        lambda: _range("intensity_g_per_kwh", [c.intensity_g_per_kwh], 0.0, 3_000.0),
    )


def check_site_power(p: SitePower, lim: Limits) -> str | None:
    return _finite(
        "site power", [p.ai_w, p.mining_w, p.overhead_w, p.total_w, p.contract_w, p.surplus_w]
    )


# --- contracts of the telemetry topics: bounded fast path, full checks for the reasons ----

METER_CONTRACT = Contract(
    MeterFrame, [check_meter], fast=BoundedMeterFrame, fast_checks=[meter_shape]
)
def _gpu_fast(f: GpuFrame, lim: Limits) -> str | None:
    """What the bounded GPU type cannot say: the shape, and steps coming together."""
    return gpu_shape(f, lim) or _counter_steps(f)


GPU_CONTRACT = Contract(GpuFrame, [check_gpu], fast=BoundedGpuFrame, fast_checks=[_gpu_fast])
ASIC_CONTRACT = Contract(AsicFrame, [check_asic], fast=BoundedAsicFrame, fast_checks=[asic_shape])
