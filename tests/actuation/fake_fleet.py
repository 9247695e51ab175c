"""Fake miners and a fake PDU that take the same commands over the same protocols as the
real ones, and ramp their reported power the way firmware does.

Each ``FakeMiner`` answers the collectors' read commands from a real (or reconstructed)
corpus capture with its current power patched in, and the firmware's write commands:
LuxOS ``logon``/``curtail``/``profileset``/``logoff`` (a session id is required),
Whatsminer v2 ``get_token`` and AES-encrypted privileged commands (wrong password: refused),
Whatsminer v3 ``set.*`` with a token, Braiins OS REST with a login token, Avalon ``ascset``.
Power ramps: down in ``down_s`` seconds, up in ``up_s`` (slower), or ``behaviour="never"``
(acknowledges, never moves) or ``"mute"`` (write commands get no answer). ``FakePdu`` is a
Modbus TCP server (functions 01, 04, 05): an open relay drops its miner to 0 W and silent.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
import secrets
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from streams.actuation import crypto
from streams.replay.asic_scrapes import command_file

CORPUS = Path(__file__).parents[1] / "collectors" / "corpus"
FOLDERS = {
    "luxos": "luxos_2025_4_8_s19kpro",
    "braiins": "braiins_os_25_07_s19xp",
    "whatsminer": "whatsminer_btminer_api_1_4",
    "whatsminer_v3": "whatsminer_api_v3_m60s",
    "avalon": "avalon_a1346_cgminer",
    "antminer": "antminer_s19pro_bmminer_49",
}
PASSWORD = "admin-pw"
Behaviour = Literal["ok", "never", "mute"]


@dataclass
class Ramp:
    """Reported power moving linearly toward a setpoint (W per second differs down/up)."""

    nominal_w: float
    down_s: float
    up_s: float
    p0: float = 0.0
    t0: float = 0.0
    target: float = 0.0

    def __post_init__(self) -> None:
        self.p0 = self.target = self.nominal_w
        self.t0 = time.monotonic()

    def power(self) -> float:
        dt = time.monotonic() - self.t0
        if self.target < self.p0:
            return max(self.target, self.p0 - dt * self.nominal_w / self.down_s)
        return min(self.target, self.p0 + dt * self.nominal_w / self.up_s)

    def set(self, target: float) -> None:
        self.p0, self.t0, self.target = self.power(), time.monotonic(), target


def _v3_file(command: str) -> str:
    return command.replace(".", "_").replace(":", "_") + ".json"


@dataclass
class FakeMiner:
    miner_id: str
    kind: str
    nominal_w: float = 3000.0
    behaviour: Behaviour = "ok"
    down_s: float = 1.0
    up_s: float = 4.0
    sleep_w: float = 20.0
    profiles: dict[str, float] = field(
        default_factory=lambda: {"default": 3000.0, "eco": 2200.0, "low": 1500.0}
    )
    port: int = 0
    powered: bool = True
    commands: list[str] = field(default_factory=list)
    _server: Any = None
    _runner: web.AppRunner | None = None
    _sessions: set[str] = field(default_factory=set)
    _v2: tuple[bytes, str] | None = None
    _salt: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        self.ramp = Ramp(self.nominal_w, self.down_s, self.up_s)
        folder = CORPUS / FOLDERS[self.kind]
        self.replies = {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}

    # ---- state ----
    def power(self) -> float:
        return self.ramp.power() if self.powered else 0.0

    def obey(self, action: str, watts: float | None = None) -> None:
        self.commands.append(action)
        if self.behaviour == "never":
            return
        if action == "sleep":
            self.ramp.set(self.sleep_w)
        elif action == "wake":
            self.ramp.set(self.nominal_w)
        elif action == "set_power" and watts is not None:
            self.ramp.set(min(watts, self.nominal_w))

    def cut(self, on: bool) -> None:
        self.powered = on
        if on:  # power-on boots and ramps up from nothing
            self.ramp.p0, self.ramp.t0 = 0.0, time.monotonic()

    # ---- read replies with the current power patched in ----
    def reply(self, name: str) -> bytes | None:
        body = self.replies.get(name)
        if body is None:
            return None
        body = copy.deepcopy(body)
        w = round(self.power())
        if self.kind == "luxos" and name == "power.json":
            body["POWER"][0]["Watts"] = w
        elif self.kind == "whatsminer" and name == "summary.json":
            body["SUMMARY"][0]["Power"] = w
            body["SUMMARY"][0]["Power_RT"] = w
        elif self.kind == "whatsminer_v3" and name == "get_miner_status_summary.json":
            body["msg"]["summary"]["power-realtime"] = w
        elif self.kind == "whatsminer_v3" and name == "get_device_info.json":
            body.setdefault("msg", {})["salt"] = self._salt
        elif self.kind == "braiins" and name == "miner_stats.json":
            body["power_stats"]["approximated_consumption"]["watt"] = w
        elif self.kind == "avalon" and name == "stats.json":
            text = re.sub(r"WALLPOWER\[\d+\]", f"WALLPOWER[{w}]", json.dumps(body))
            return text.encode()
        return json.dumps(body).encode()

    # ---- servers ----
    async def start(self) -> FakeMiner:
        if self.kind == "braiins":
            app = web.Application()
            app.router.add_post("/api/v1/auth/login", self._login)
            app.router.add_get("/api/v1/{path:.+}", self._get)
            app.router.add_put("/api/v1/{path:.+}", self._put)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return self
        handler = self._v3 if self.kind == "whatsminer_v3" else self._cgminer
        self._server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=256)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @staticmethod
    def _status(ok: bool, msg: str = "") -> dict[str, Any]:
        return {"STATUS": [{"STATUS": "S" if ok else "E", "Code": 0 if ok else 14, "Msg": msg}]}

    async def _cgminer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await reader.read(65536)
            if not self.powered:
                return
            req = json.loads(raw.rstrip(b"\x00"))
            out = self._answer(req)
            if out is not None:
                writer.write(out + b"\x00")
                await writer.drain()
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def _answer(self, req: dict[str, Any]) -> bytes | None:
        write = self._write(req)
        if write is not None:
            if self.behaviour == "mute":
                return None
            return json.dumps(write).encode()
        command = str(req.get("command") or req.get("cmd"))
        body = self.reply(command_file(command))
        return body or json.dumps(self._status(False, "Invalid command")).encode()

    def _write(self, req: dict[str, Any]) -> dict[str, Any] | None:
        """Answer to a write command, or None if ``req`` is a read."""
        cmd = req.get("command") or req.get("cmd")
        param = str(req.get("parameter", ""))
        if self.kind == "luxos":
            if cmd == "logon":
                sid = secrets.token_hex(4)
                self._sessions.add(sid)
                return {"SESSION": [{"SessionID": sid}], **self._status(True, "logon")}
            if cmd == "profiles":
                return {
                    "PROFILES": [{"Profile Name": k, "Watts": v} for k, v in self.profiles.items()]
                }
            if cmd in ("curtail", "profileset", "logoff"):
                sid, _, arg = param.partition(",")
                if sid not in self._sessions:
                    return self._status(False, "invalid session")
                if cmd == "logoff":
                    self._sessions.discard(sid)
                elif cmd == "curtail":
                    self.obey("sleep" if arg == "sleep" else "wake")
                else:
                    self.obey("set_power", self.profiles.get(arg))
                return self._status(True, str(cmd))
        if self.kind == "avalon" and cmd == "ascset":
            verb = param.split(",")[1] if "," in param else ""
            if verb not in ("softoff", "softon"):
                return self._status(False, f"ascset {param}")
            self.obey("sleep" if verb == "softoff" else "wake")
            return self._status(True, "ASC 0 set OK")
        if self.kind == "whatsminer":
            if cmd == "get_token":
                now = str(int(time.time()))
                salt, newsalt = "BQ5hoXV9", secrets.token_hex(4)
                self._v2 = crypto.v2_session(
                    PASSWORD, {"salt": salt, "newsalt": newsalt, "time": now}
                )
                return {"STATUS": "S", "Msg": {"salt": salt, "newsalt": newsalt, "time": now}}
            if req.get("enc") == 1:
                if self._v2 is None:
                    return {"STATUS": "E", "Msg": "no token"}
                key, sign = self._v2
                try:
                    inner = crypto.v2_decrypt(key, str(req["data"]))
                except (ValueError, KeyError):
                    return {"STATUS": "E", "Msg": "cannot decrypt: wrong password"}
                if inner.get("token") != sign:
                    return {"STATUS": "E", "Msg": "invalid token"}
                c = inner.get("cmd")
                if c == "power_off":
                    self.obey("sleep")
                elif c == "power_on":
                    self.obey("wake")
                elif c == "adjust_power_limit":
                    self.obey("set_power", float(inner["power_limit"]))
                else:
                    return {"STATUS": "E", "Msg": f"unknown {c}"}
                plain = json.dumps({"STATUS": [{"STATUS": "S", "Msg": c}]}).encode()
                enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
                padded = plain + b"\x00" * (-len(plain) % 16)
                return {"enc": base64.b64encode(enc.update(padded) + enc.finalize()).decode()}
        return None

    async def _v3(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (size,) = struct.unpack("<I", await reader.readexactly(4))
            req = json.loads(await reader.readexactly(size))
            if not self.powered:
                return
            cmd = str(req["cmd"])
            if cmd.startswith("set."):
                if self.behaviour == "mute":
                    return
                token = crypto.v3_token(cmd, PASSWORD, self._salt, int(req.get("ts", 0)))
                if req.get("token") != token:
                    out: dict[str, Any] = {"code": -4, "msg": "invalid token"}
                else:
                    if cmd == "set.miner.service":
                        self.obey("sleep" if req["param"] == "stop" else "wake")
                    elif cmd == "set.miner.power":
                        self.obey("set_power", float(req["param"]))
                    out = {"code": 0, "msg": "ok", "desc": cmd}
                body = json.dumps(out).encode()
            else:
                name = _v3_file(cmd + (f":{req['param']}" if req.get("param") else ""))
                body = self.reply(name) or json.dumps({"code": -1, "msg": "invalid"}).encode()
            writer.write(struct.pack("<I", len(body)) + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def _login(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("password") != PASSWORD:
            return web.json_response({"message": "bad credentials"}, status=401)
        sid = secrets.token_hex(4)
        self._sessions.add(sid)
        return web.json_response({"token": sid, "timeout_s": 3600})

    async def _get(self, request: web.Request) -> web.Response:
        if not self.powered:
            raise ConnectionResetError
        if request.headers.get("Authorization") not in self._sessions:
            return web.json_response({"message": "unauthorized"}, status=401)
        body = self.reply(command_file(request.match_info["path"]))
        if body is None:
            return web.json_response({"message": "not found"}, status=404)
        return web.Response(body=body, content_type="application/json")

    async def _put(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") not in self._sessions:
            return web.json_response({"message": "unauthorized"}, status=401)
        if self.behaviour == "mute":
            await asyncio.sleep(3600)
        path = request.match_info["path"]
        if path == "actions/pause":
            self.obey("sleep")
        elif path == "actions/resume":
            self.obey("wake")
        elif path == "performance/power-target":
            self.obey("set_power", float((await request.json())["watt"]))
        else:
            return web.json_response({"message": "not found"}, status=404)
        return web.json_response({})


class FakePdu:
    """Modbus TCP relay PDU: coil i feeds ``outlets[i]``; input register i is its watts."""

    def __init__(self, outlets: dict[int, FakeMiner]) -> None:
        self.outlets = outlets
        self.port = 0
        self.writes: list[tuple[int, bool]] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> FakePdu:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                tid, pid, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                pdu = await reader.readexactly(length - 1)
                fc = pdu[0]
                if fc == 5:  # write single coil: echo the request
                    addr, value = struct.unpack(">HH", pdu[1:5])
                    on = value == 0xFF00
                    self.writes.append((addr, on))
                    miner = self.outlets.get(addr)
                    if miner is not None:
                        miner.cut(on)
                    resp = pdu[:5]
                elif fc == 1:  # read coils
                    addr, count = struct.unpack(">HH", pdu[1:5])
                    bits = 0
                    for i in range(count):
                        m = self.outlets.get(addr + i)
                        if m is None or m.powered:
                            bits |= 1 << i
                    nbytes = (count + 7) // 8
                    resp = bytes([1, nbytes]) + bits.to_bytes(nbytes, "little")
                elif fc == 4:  # read input registers: outlet watts
                    addr, count = struct.unpack(">HH", pdu[1:5])
                    regs = [
                        min(65535, round(self.outlets[a].power())) if a in self.outlets else 0
                        for a in range(addr, addr + count)
                    ]
                    resp = bytes([4, 2 * count]) + struct.pack(f">{count}H", *regs)
                else:
                    resp = bytes([fc | 0x80, 1])
                writer.write(struct.pack(">HHHB", tid, pid, len(resp) + 1, unit) + resp)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@dataclass
class FakeFleet:
    miners: list[FakeMiner]
    pdu: FakePdu
    doc: dict[str, Any]

    async def stop(self) -> None:
        await asyncio.gather(*(m.stop() for m in self.miners), self.pdu.stop())

    def by_id(self, miner_id: str) -> FakeMiner:
        return next(m for m in self.miners if m.miner_id == miner_id)


async def start_fleet(
    counts: dict[str, int],
    *,
    behaviours: dict[str, Behaviour] | None = None,
    tiers: dict[str, int] | None = None,
    outlets_for: set[str] | None = None,
    down_s: float = 1.0,
    up_s: float = 4.0,
    site_id: str = "fake-site",
) -> FakeFleet:
    """Start ``counts[kind]`` miners of each kind, a PDU, and the fleet file as a dict.
    Every antminer and every miner in ``outlets_for`` is wired to a PDU outlet."""
    behaviours = behaviours or {}
    tiers = tiers or {}
    outlets_for = outlets_for or set()
    miners = [
        FakeMiner(
            f"{kind}-{i:04d}",
            kind,
            behaviour=behaviours.get(f"{kind}-{i:04d}", "ok"),
            down_s=down_s,
            up_s=up_s,
        )
        for kind, n in counts.items()
        for i in range(n)
    ]
    wired = [m for m in miners if m.kind == "antminer" or m.miner_id in outlets_for]
    pdu = FakePdu({i: m for i, m in enumerate(wired)})
    await asyncio.gather(pdu.start(), *(m.start() for m in miners))
    coil = {m.miner_id: i for i, m in enumerate(wired)}
    entries: list[dict[str, Any]] = []
    for m in miners:
        e: dict[str, Any] = {
            "id": m.miner_id,
            "host": "127.0.0.1",
            "port": m.port,
            "kind": m.kind,
            "tier": tiers.get(m.miner_id, 0),
            "nominal_w": m.nominal_w,
            "password": PASSWORD,
        }
        if m.miner_id in coil:
            c = coil[m.miner_id]
            e["outlet"] = {"pdu": "pdu-a", "coil": c, "power_register": c}
        entries.append(e)
    doc = {
        "site_id": site_id,
        "pdus": [{"id": "pdu-a", "host": "127.0.0.1", "port": pdu.port, "unit": 1}],
        "miners": entries,
    }
    return FakeFleet(miners, pdu, doc)
