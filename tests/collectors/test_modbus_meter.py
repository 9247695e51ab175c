"""Modbus meters: register decoding (oracle: pymodbus' own encoder) and reads from a local
pymodbus TCP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from streams.collectors.modbus_meter import (
    MeterEndpoint,
    Register,
    RegisterMap,
    decode,
    read_meter,
    scrape,
)
from tests.collectors.fake_miner import closed_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

DT = AsyncModbusTcpClient.DATATYPE
DataType = Any  # pymodbus' DATATYPE enum lives on the client class


def regs(value: float, dt: DataType) -> list[int]:
    return list(AsyncModbusTcpClient.convert_to_registers(value, dt))


@pytest.mark.parametrize(
    ("value", "dt", "reg"),
    [
        (1234.5, DT.FLOAT32, Register(0, "float32")),
        (-750.25, DT.FLOAT32, Register(0, "float32")),  # export is negative power
        (123_456_789.125, DT.FLOAT64, Register(0, "float64")),
        (2**40 + 7, DT.UINT64, Register(0, "uint64")),
        (-5, DT.INT64, Register(0, "int64")),
        (4_000_000_000, DT.UINT32, Register(0, "uint32")),
        (-2_000_000, DT.INT32, Register(0, "int32")),
    ],
)
async def test_decode_matches_pymodbus_encoding(value: float, dt: DataType, reg: Register) -> None:
    assert decode(regs(value, dt), reg) == value


@pytest.mark.parametrize(
    ("raw", "reg", "expected"),
    [
        ([0x4120, 0x0000], Register(0, "float32", scale=1000.0), 10_000.0),  # 10.0 kW -> W
        ([0x0000, 0x0001, 0x0000, 0x0000], Register(0, "uint64"), float(2**32)),  # high word first
    ],
)
async def test_decode_by_hand(raw: list[int], reg: Register, expected: float) -> None:
    assert decode(raw, reg) == expected


@pytest.mark.parametrize(
    ("raw", "reg", "match"),
    [
        ([1], Register(0, "float32"), "needs 2 registers"),
        ([70000, 0], Register(0, "float32"), "0..65535"),
    ],
)
async def test_decode_rejects(raw: list[int], reg: Register, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decode(raw, reg)


POWER_W = 1_512_345.5
ENERGY_WH = 987_654_321.25  # past float32's exact range: the reason energy is float64


@pytest.fixture
async def meter_port() -> AsyncIterator[int]:
    values = [0] * 64
    values[0:2] = regs(POWER_W, DT.FLOAT32)
    values[2:6] = regs(ENERGY_WH, DT.FLOAT64)
    values[10:12] = regs(-42.0, DT.FLOAT32)
    # pymodbus data blocks count from 1: block address 1 is protocol register 0
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, values))  # type: ignore[no-untyped-call]
    port = closed_port()
    server = ModbusTcpServer(
        ModbusServerContext(devices={1: device}, single=False), address=("127.0.0.1", port)
    )
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.1)
    yield port
    await server.shutdown()  # type: ignore[no-untyped-call]
    task.cancel()


async def test_read_power_and_energy(meter_port: int) -> None:
    v = await read_meter(MeterEndpoint("poi", "127.0.0.1", meter_port))
    assert v.power_w == pytest.approx(POWER_W, rel=1e-7)  # float32 on the wire
    assert v.energy_wh == ENERGY_WH


async def test_scrape_frames_good_meters_and_names_bad_ones(meter_port: int) -> None:
    meters = [
        MeterEndpoint("poi", "127.0.0.1", meter_port),
        MeterEndpoint(
            "export", "127.0.0.1", meter_port, map=RegisterMap(Register(10, "float32"), None)
        ),
        MeterEndpoint("gone", "127.0.0.1", closed_port()),
    ]
    frame, errors = await scrape(meters, "s", "gw", 100.0, 7, timeout_s=0.5)
    assert frame is not None
    assert frame.meter_id == ["poi", "export"]
    assert frame.power_w[1] == -42.0
    assert frame.energy_wh == [ENERGY_WH, None]
    assert (frame.ts_s, frame.seq) == (100.0, 7)
    assert list(errors) == ["gone"] and "gone" in errors["gone"]
