"""Collector configs, rack framing, and one scrape of the ASIC loop end to end against fake
miners with a producer double."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from schemas.packed import is_packed
from schemas.registry import CONTRACTS
from schemas.telemetry import AsicFrame
from schemas.validation import Limits
from streams.collectors.asic_client import Endpoint
from streams.collectors.asic_parse import MinerReading
from streams.collectors.config import ConfigError, Fleet, load_fleet, load_meters
from streams.collectors.loops import rack_frames, run_asic
from streams.collectors.modbus_meter import Register
from streams.sim.encode import Encoding
from tests.collectors.fake_miner import FakeCgminer, closed_port
from transforms.sources import SHARED_DATA

pytestmark = pytest.mark.asyncio(loop_scope="session")

ASIC = SHARED_DATA / "asic_miner_api"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


async def test_fleet_defaults(tmp_path: Path) -> None:
    f = load_fleet(
        write(
            tmp_path,
            'site_id = "s"\nrack_size = 2\n'
            '[[miners]]\nid = "a"\nhost = "10.0.0.1"\nkind = "antminer"\n'
            '[[miners]]\nid = "b"\nhost = "10.0.0.2"\nkind = "braiins"\npassword = "p"\n',
        )
    )
    assert f.miners == [
        Endpoint("a", "10.0.0.1", 4028, "antminer"),
        Endpoint("b", "10.0.0.2", 80, "braiins", "root", "p"),
    ]
    assert (f.site_id, f.rack_size) == ("s", 2)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no \\[\\[miners\\]\\]"),
        ('[[miners]]\nid = "a"\nkind = "antminer"\n', "missing 'host'"),
        ('[[miners]]\nid = "a"\nhost = "h"\nkind = "fpga"\n', "kind 'fpga'"),
        ("[[miners]\n", "cannot read"),
    ],
)
async def test_bad_fleets(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_fleet(write(tmp_path, text))


async def test_meter_config_register_map(tmp_path: Path) -> None:
    m = load_meters(
        write(
            tmp_path,
            'source_id = "gw"\n[[meters]]\nid = "poi"\nhost = "h"\n'
            'power = { address = 3059, type = "float32", scale = 1000.0 }\n'
            'energy = { address = 3203, type = "int64" }\n'
            '[[meters]]\nid = "sub"\nhost = "h"\nenergy = false\n',
        )
    )
    assert m.meters[0].map.power_w == Register(3059, "float32", 1000.0)
    assert m.meters[0].map.energy_wh == Register(3203, "int64")
    assert m.meters[1].map.power_w == Register(0, "float32") and m.meters[1].map.energy_wh is None


async def test_bad_register_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown register type"):
        load_meters(write(tmp_path, '[[meters]]\nid = "a"\nhost = "h"\npower = { type = "bcd" }\n'))


@pytest.mark.parametrize("encoding", ["json", "packed"])
@pytest.mark.parametrize(("n", "rack", "sizes"), [(5, 2, [2, 2, 1]), (4, 4, [4]), (1, 50, [1])])
async def test_rack_frames(n: int, rack: int, sizes: list[int], encoding: Encoding) -> None:
    readings = [MinerReading(f"m{i}", "S19", 100.0, None, 60.0, 5000, "hashing") for i in range(n)]
    out = rack_frames(readings, Fleet("s", rack, []), 10.0, 4, encoding)
    asic = CONTRACTS["telemetry.asic.v1"]
    decoded = [asic.decode(v, Limits(now_s=10.0)) for _, v in out]
    assert all(isinstance(f, AsicFrame) for f in decoded), decoded
    frames = [f for f in decoded if isinstance(f, AsicFrame)]
    assert all(is_packed(v) == (encoding == "packed") for _, v in out)
    assert [len(f.miner_id) for f in frames] == sizes
    assert [k for k, _ in out] == [f"rack-{i:04d}" for i in range(len(sizes))]
    assert [m for f in frames for m in f.miner_id] == [f"m{i}" for i in range(n)]


class Sent:
    def __init__(self) -> None:
        self.items: list[tuple[str, bytes, bytes | None]] = []
        self.flushed = False

    def send(
        self,
        base: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        self.items.append((base, value, key))

    def flush(self, timeout_s: float = 60.0) -> None:
        self.flushed = True


async def test_one_asic_scrape_end_to_end() -> None:
    server = await FakeCgminer(ASIC / "whatsminer_btminer_api_v1").start()
    try:
        fleet = Fleet(
            "s",
            2,
            [
                Endpoint("wm-1", "127.0.0.1", server.port, "whatsminer"),
                Endpoint("wm-2", "127.0.0.1", server.port, "whatsminer"),
                Endpoint("dead", "127.0.0.1", closed_port(), "antminer"),
            ],
        )
        sent, lines = Sent(), list[str]()
        n = await run_asic(
            fleet,
            sent,
            0.01,
            1.0,
            10,
            iterations=1,
            report=lines.append,
        )
    finally:
        await server.stop()
    assert n == 1 and sent.flushed
    frames = [msgspec.json.decode(v, type=AsicFrame) for _, v, _ in sent.items]
    assert [f.miner_id for f in frames] == [["wm-1", "wm-2"], ["dead"]]
    assert frames[0].power_w == [3417.0, 3417.0]
    assert frames[1].state == ["offline"] and frames[1].error is not None
    assert lines == ["scrape 0: 3 miners, 1 offline/unknown"]


async def test_a_frame_the_packed_encoding_cannot_carry_goes_as_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    readings = [MinerReading("m0", "S19", 100.0, None, float("nan"), 5000, "hashing")]
    ((_, value),) = rack_frames(readings, Fleet("s", 10, []), 10.0, 4, "packed")
    assert not is_packed(value) and b'"miner_id":["m0"]' in value
    assert "sent as JSON" in caplog.text
