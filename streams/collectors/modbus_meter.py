"""Power meters over Modbus TCP (pymodbus): power and energy registers -> ``MeterFrame``.

Register map (``RegisterMap``; every address is configurable because every meter model
has its own). Default, used by the tests and the example config:

| quantity | function | address | registers | type | byte/word order | scale |
|---|---|---|---|---|---|---|
| active power, W (import +) | holding (03) | 0 | 2 | float32 | big-endian, high word first | 1.0 |
| import energy, Wh | holding (03) | 2 | 4 | float64 | big-endian, high word first | 1.0 |

Types: ``float32``, ``float64``, ``int32``, ``uint32``, ``int64``, ``uint64`` (signed
power for export). ``scale`` multiplies the raw value into W or Wh (e.g. 1000 for a kW or
kWh register). Energy is float64 or a 64-bit integer on purpose: a float32 Wh register
counts in steps of 8 Wh above 100 MWh, too coarse for settlement.

A meter that fails (timeout, refused, Modbus exception) is left out of the frame and its
reason returned to the caller; the frame's meter list says which were read.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from schemas.telemetry import MeterFrame
from streams.errors import TransientError

RegType = Literal["float32", "float64", "int32", "uint32", "int64", "uint64"]
_FORMATS: dict[str, tuple[str, int]] = {
    "float32": (">f", 2),
    "float64": (">d", 4),
    "int32": (">i", 2),
    "uint32": (">I", 2),
    "int64": (">q", 4),
    "uint64": (">Q", 4),
}


class ModbusReadError(TransientError, RuntimeError):
    """A meter could not be read; names meter, host and register."""


@dataclass(frozen=True, slots=True)
class Register:
    address: int
    type: RegType = "float32"
    scale: float = 1.0
    function: Literal["holding", "input"] = "holding"

    @property
    def count(self) -> int:
        return _FORMATS[self.type][1]


@dataclass(frozen=True, slots=True)
class RegisterMap:
    power_w: Register = field(default_factory=lambda: Register(0, "float32"))
    energy_wh: Register | None = field(default_factory=lambda: Register(2, "float64"))


def decode(registers: Sequence[int], reg: Register) -> float:
    """16-bit registers (high word first) -> scaled value (pure)."""
    fmt, count = _FORMATS[reg.type]
    if len(registers) != count:
        raise ValueError(f"{reg.type} needs {count} registers, got {len(registers)}")
    if any(not 0 <= r <= 0xFFFF for r in registers):
        raise ValueError(f"register values must be 0..65535, got {list(registers)}")
    raw = struct.unpack(fmt, b"".join(r.to_bytes(2, "big") for r in registers))[0]
    return float(raw) * reg.scale


@dataclass(frozen=True, slots=True)
class MeterEndpoint:
    meter_id: str
    host: str
    port: int = 502
    unit_id: int = 1
    map: RegisterMap = field(default_factory=RegisterMap)


@dataclass(frozen=True, slots=True)
class MeterValue:
    meter_id: str
    power_w: float
    energy_wh: float | None


async def _read(client: object, reg: Register, unit: int, ep: MeterEndpoint) -> float:
    fn = getattr(
        client, "read_holding_registers" if reg.function == "holding" else "read_input_registers"
    )
    rr = await fn(reg.address, count=reg.count, device_id=unit)
    if rr.isError():
        raise ModbusReadError(
            f"meter {ep.meter_id} at {ep.host}:{ep.port} unit {unit}: "
            f"{reg.function} register {reg.address}: {rr}"
        )
    return decode(rr.registers, reg)


async def read_meter(ep: MeterEndpoint, timeout_s: float = 3.0) -> MeterValue:
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.exceptions import ModbusException

    client = AsyncModbusTcpClient(ep.host, port=ep.port, timeout=timeout_s, retries=0)
    try:
        async with asyncio.timeout(timeout_s * 2):
            if not await client.connect():
                raise ModbusReadError(f"meter {ep.meter_id}: cannot connect to {ep.host}:{ep.port}")
            power = await _read(client, ep.map.power_w, ep.unit_id, ep)
            energy = (
                None
                if ep.map.energy_wh is None
                else await _read(client, ep.map.energy_wh, ep.unit_id, ep)
            )
    except TimeoutError as exc:
        raise ModbusReadError(
            f"meter {ep.meter_id} at {ep.host}:{ep.port}: no reply in {timeout_s:g} s"
        ) from exc
    except ModbusException as exc:
        raise ModbusReadError(f"meter {ep.meter_id} at {ep.host}:{ep.port}: {exc}") from exc
    finally:
        client.close()
    return MeterValue(ep.meter_id, power, energy)


async def scrape(
    meters: Sequence[MeterEndpoint],
    site_id: str,
    source_id: str,
    ts_s: float,
    seq: int,
    timeout_s: float = 3.0,
) -> tuple[MeterFrame | None, dict[str, str]]:
    """Read all meters concurrently: the frame of those read, and why the others failed."""
    results = await asyncio.gather(
        *(read_meter(m, timeout_s) for m in meters), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, MeterValue)]
    errors = {
        m.meter_id: str(r)
        for m, r in zip(meters, results, strict=True)
        if isinstance(r, BaseException)
    }
    if not ok:
        return None, errors
    frame = MeterFrame(
        site_id=site_id,
        source_id=source_id,
        ts_s=ts_s,
        seq=seq,
        meter_id=[r.meter_id for r in ok],
        power_w=[r.power_w for r in ok],
        energy_wh=[r.energy_wh for r in ok],
    )
    return frame, errors
