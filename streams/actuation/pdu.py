"""PDU / relay outlets over Modbus TCP (pymodbus): cut or restore a miner's power, read it.

Stock Antminer firmware has no power control, and a miner that ignores its firmware command
is escalated to its outlet: coil ``coil`` of unit ``unit`` (on = powered; Modbus function 05
Write Single Coil, read back with 01 Read Coils). Outlet power, where the PDU meters it, is an
input register (function 04) holding watts. SNMP outlet control (PowerNet-MIB and similar) is
not implemented: no SNMP library is installed (docs/actuation.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outlet:
    outlet_id: str
    host: str
    port: int = 502
    unit: int = 1
    coil: int = 0
    power_register: int | None = None
    """Input register with the outlet's watts, if the PDU meters outlets."""


async def set_outlet(o: Outlet, on: bool, timeout_s: float = 3.0) -> tuple[bool, str]:
    """Write the coil, read it back: acknowledged only if the relay reports the new state."""
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.exceptions import ModbusException

    client = AsyncModbusTcpClient(o.host, port=o.port, timeout=timeout_s, retries=0)
    try:
        if not await client.connect():
            return False, f"PDU {o.host}:{o.port} does not answer"
        wr = await client.write_coil(o.coil, on, device_id=o.unit)
        if wr.isError():
            return False, f"PDU refused coil {o.coil}: {wr}"
        rd = await client.read_coils(o.coil, count=1, device_id=o.unit)
        if rd.isError() or bool(rd.bits[0]) != on:
            return False, f"outlet {o.outlet_id} reads back {'off' if on else 'on'}"
        return True, f"outlet {o.outlet_id} {'on' if on else 'off'}"
    except (ModbusException, OSError) as exc:
        return False, f"PDU {o.host}:{o.port}: {exc}"
    finally:
        client.close()


async def outlet_power(o: Outlet, timeout_s: float = 3.0) -> float | None:
    """Outlet watts; 0 when the relay is open; None when unknown."""
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.exceptions import ModbusException

    client = AsyncModbusTcpClient(o.host, port=o.port, timeout=timeout_s, retries=0)
    try:
        if not await client.connect():
            return None
        rd = await client.read_coils(o.coil, count=1, device_id=o.unit)
        if rd.isError():
            return None
        if not rd.bits[0]:
            return 0.0
        if o.power_register is None:
            return None
        rr = await client.read_input_registers(o.power_register, count=1, device_id=o.unit)
        return None if rr.isError() else float(rr.registers[0])
    except (ModbusException, OSError):
        return None
    finally:
        client.close()
