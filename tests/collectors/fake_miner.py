"""Fake miners for tests: the real recorded replies over the real protocols.

``FakeCgminer`` is an asyncio TCP server on 127.0.0.1 (random port) that answers
cgminer-style JSON commands (``{"command": ...}`` or Whatsminer's ``{"cmd": ...}``) with the
files of a recorded scrape folder, NUL-terminated, then closes, like bmminer does. Its
``behaviour`` can instead be ``slow`` (answers after ``delay_s``), ``garbled`` (bytes that
are not JSON) or ``hangup`` (closes without a word). ``FakeBraiins`` is an aiohttp server
with Braiins OS's ``/api/v1`` login and token check.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from streams.replay.asic_scrapes import command_file

Behaviour = Literal["ok", "slow", "garbled", "hangup"]


class FakeCgminer:
    def __init__(
        self, folder: Path | None, behaviour: Behaviour = "ok", delay_s: float = 5.0
    ) -> None:
        self.folder = folder
        self.behaviour = behaviour
        self.delay_s = delay_s
        self.port = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> FakeCgminer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            raw = await reader.read(4096)
            self.requests += 1
            if self.behaviour == "hangup":
                return
            if self.behaviour == "slow":
                await asyncio.sleep(self.delay_s)
            if self.behaviour == "garbled":
                writer.write(
                    b'{"STATUS":[{"STATUS":"S","Code":11}],"SUMMARY":[{"GHS 5s":\xff\xfe}\x00'
                )
                await writer.drain()
                return
            request = json.loads(raw.rstrip(b"\x00"))
            command = request.get("command") or request.get("cmd")
            assert self.folder is not None
            f = self.folder / command_file(str(command))
            body = (
                f.read_bytes()
                if f.is_file()
                else json.dumps(
                    {"STATUS": [{"STATUS": "E", "Code": 14, "Msg": "Invalid command"}]}
                ).encode()
            )
            writer.write(body + b"\x00")
            await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


class FakeBraiins:
    TOKEN = "bos-token-1"

    def __init__(self, folder: Path, password: str = "secret") -> None:
        self.folder = folder
        self.password = password
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> FakeBraiins:
        app = web.Application()
        app.router.add_post("/api/v1/auth/login", self._login)
        app.router.add_get("/api/v1/{path:.+}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _login(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("username") != "root" or body.get("password") != self.password:
            return web.json_response({"message": "bad credentials"}, status=401)
        return web.json_response({"token": self.TOKEN, "timeout_s": 3600})

    async def _get(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.TOKEN:
            return web.json_response({"message": "unauthorized"}, status=401)
        f = self.folder / command_file(request.match_info["path"])
        if not f.is_file():
            return web.json_response({"message": "not found"}, status=404)
        return web.Response(body=f.read_bytes(), content_type="application/json")


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def v3_reply_file(command: str) -> str:
    """``get.miner.status:summary`` -> ``get_miner_status_summary.json`` (corpus naming)."""
    return command.replace(".", "_").replace(":", "_") + ".json"


class FakeWhatsminerV3:
    """Whatsminer API v3 over TCP: a 4-byte little-endian length, then JSON, both ways;
    ``{"cmd": c, "param": p}`` is answered from ``<c>_<p>.json`` (dots as ``_``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> FakeWhatsminerV3:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (size,) = struct.unpack("<I", await reader.readexactly(4))
            request = json.loads(await reader.readexactly(size))
            command = request["cmd"] + (f":{request['param']}" if request.get("param") else "")
            f = self.folder / v3_reply_file(command)
            body = (
                f.read_bytes()
                if f.is_file()
                else json.dumps({"code": -1, "msg": "invalid command"}).encode()
            )
            writer.write(struct.pack("<I", len(body)) + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
