"""The asyncio miner client against fake miners serving real recorded replies over the
real protocols (TCP JSON with NUL terminator; Braiins OS REST with login token)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from streams.collectors.asic_client import Endpoint, cgminer_call, poll_fleet
from streams.collectors.asic_parse import ParseError
from tests.collectors.fake_miner import FakeBraiins, FakeCgminer, closed_port
from transforms.sources import SHARED_DATA

# The fake miners live in the session event loop (the project's fixture loop scope), so
# the tests must run in that loop too.
pytestmark = pytest.mark.asyncio(loop_scope="session")

ASIC = SHARED_DATA / "asic_miner_api"
FOLDERS = {
    "antminer": ASIC / "antminer_s19pro_stock_bmminer",
    "avalon": ASIC / "avalon_cgminer",
    "luxos": ASIC / "luxos_antminer_s19kpro",
    "whatsminer": ASIC / "whatsminer_btminer_api_v1",
}


@pytest.fixture
async def miners() -> AsyncIterator[dict[str, FakeCgminer | FakeBraiins]]:
    servers: dict[str, FakeCgminer | FakeBraiins] = {
        kind: await FakeCgminer(folder).start() for kind, folder in FOLDERS.items()
    }
    servers["braiins"] = await FakeBraiins(ASIC / "braiins_os_v25_07_rest").start()
    servers["slow"] = await FakeCgminer(FOLDERS["antminer"], "slow", delay_s=3.0).start()
    servers["garbled"] = await FakeCgminer(None, "garbled").start()
    servers["hangup"] = await FakeCgminer(None, "hangup").start()
    yield servers
    for s in servers.values():
        await s.stop()


async def test_cgminer_reply_with_nul_is_read(miners: dict[str, FakeCgminer | FakeBraiins]) -> None:
    body = await cgminer_call("127.0.0.1", miners["antminer"].port, "summary")
    assert body == json.loads((FOLDERS["antminer"] / "summary.json").read_text())


async def test_unknown_command_is_an_error_status(
    miners: dict[str, FakeCgminer | FakeBraiins],
) -> None:
    body = await cgminer_call("127.0.0.1", miners["antminer"].port, "fly")
    assert body["STATUS"][0]["STATUS"] == "E"


async def test_garbled_reply_raises_parse_error(
    miners: dict[str, FakeCgminer | FakeBraiins],
) -> None:
    with pytest.raises((ParseError, UnicodeDecodeError)):
        await cgminer_call("127.0.0.1", miners["garbled"].port, "summary")


@pytest.mark.parametrize("kind", ["antminer", "avalon", "luxos", "whatsminer", "braiins"])
async def test_each_firmware_over_its_protocol(
    miners: dict[str, FakeCgminer | FakeBraiins], kind: str
) -> None:
    ep = Endpoint(f"{kind}-1", "127.0.0.1", miners[kind].port, kind, "root", "secret")
    [r] = await poll_fleet([ep], timeout_s=2.0)
    assert r.error is None and r.miner_id == f"{kind}-1"
    assert r.state in ("hashing", "sleeping")


@pytest.mark.parametrize(
    ("target", "kind", "password", "state", "reason"),
    [
        ("slow", "antminer", "", "offline", "no complete reply within 0.3 s"),
        ("garbled", "antminer", "", "unknown", "bad reply"),
        ("hangup", "antminer", "", "unknown", "empty reply"),
        ("closed", "antminer", "", "offline", "cannot talk to"),
        ("braiins", "braiins", "wrong", "unknown", "login answered HTTP 401"),
        ("antminer", "braiins", "secret", "offline", "cannot talk to"),  # no HTTP on a TCP API
    ],
)
async def test_bad_miners_give_a_status_not_a_crash(
    miners: dict[str, FakeCgminer | FakeBraiins],
    target: str,
    kind: str,
    password: str,
    state: str,
    reason: str,
) -> None:
    port = closed_port() if target == "closed" else miners[target].port
    [r] = await poll_fleet(
        [Endpoint("x", "127.0.0.1", port, kind, "root", password)], timeout_s=0.3
    )
    assert r.state == state
    assert r.error is not None and reason in r.error
    assert r.hashrate_ths == 0.0 and r.power_w is None


async def test_five_hundred_miners_with_some_bad_ones(
    miners: dict[str, FakeCgminer | FakeBraiins],
) -> None:
    dead = closed_port()
    good_kinds = ["antminer", "avalon", "luxos", "whatsminer", "braiins"]
    endpoints = []
    want: Counter[str] = Counter()
    for i in range(500):
        slot = i % 50
        if slot == 0:
            ep, w = Endpoint(f"m{i}", "127.0.0.1", miners["slow"].port, "antminer"), "offline"
        elif slot == 1:
            ep, w = Endpoint(f"m{i}", "127.0.0.1", miners["garbled"].port, "antminer"), "unknown"
        elif slot == 2:
            ep, w = Endpoint(f"m{i}", "127.0.0.1", dead, "whatsminer"), "offline"
        else:
            kind = good_kinds[i % 5]
            ep = Endpoint(f"m{i}", "127.0.0.1", miners[kind].port, kind, "root", "secret")
            w = "ok"
        endpoints.append(ep)
        want[w] += 1
    started = time.monotonic()
    readings = await poll_fleet(endpoints, timeout_s=1.0, concurrency=128)
    elapsed = time.monotonic() - started
    assert [r.miner_id for r in readings] == [e.miner_id for e in endpoints]  # order kept
    got: Counter[str] = Counter("ok" if r.error is None else r.state for r in readings)
    assert got == want == {"ok": 470, "offline": 20, "unknown": 10}
    assert all(r.state in ("hashing", "sleeping") for r in readings if r.error is None)
    # slow miners cost one timeout each, in parallel, not 10 x 1 s in series
    assert elapsed < 8.0
