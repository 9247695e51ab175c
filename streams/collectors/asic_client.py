"""A small asyncio client for miner APIs, and a concurrent poller for whole fleets.

Protocols:

- cgminer-style JSON over TCP (port 4028): stock Antminer (bmminer), Avalon, LuxOS send
  ``{"command": "summary"}``; Whatsminer's btminer API v1 takes ``{"cmd": "summary"}`` for
  its read-only commands; Auradine's GCMiner/FluxOS answers cgminer-style too. One command per
  connection; the miner answers with a JSON object, often followed by a NUL byte, and closes.
- Whatsminer API v3 (TCP 4433): ``{"cmd": "get.miner.status", "param": "summary"}`` framed
  by a 4-byte little-endian length, answered the same way (pyasic ``BTMinerV3RPCAPI``).
- Braiins OS REST (HTTP, ``/api/v1/...``): ``POST /api/v1/auth/login`` with username and
  password returns a token that goes, as is, in the ``Authorization`` header.

Only the commands in ``REQUIRED`` must answer; an optional command that fails (an error
status, a 404 from an endpoint a firmware release moved or dropped, a closed socket) only
leaves the fields it carries None, with the reason, in the reading.

``poll_fleet`` polls thousands of miners concurrently (an ``asyncio.Semaphore`` bounds open
sockets), each with one overall timeout. A miner that refuses, times out or answers
garbage yields a ``MinerReading`` with state ``offline`` or ``unknown`` and the reason;
nothing a miner sends can crash the poll.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from streams.collectors.asic_parse import (
    COMMANDS,
    REQUIRED,
    MinerReading,
    ParseError,
    decode_reply,
    failed,
    parse,
)

MAX_REPLY_BYTES = 4 * 1024 * 1024
"""A reply longer than this is not a miner talking; stop reading."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    miner_id: str
    host: str
    port: int
    kind: str
    username: str = "root"
    password: str = ""


async def cgminer_call(
    host: str, port: int, command: str, *, key: str = "command"
) -> dict[str, Any]:
    """Send one command, read to EOF or NUL, decode. Raises OSError or ParseError."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(json.dumps({key: command}).encode())
        await writer.drain()
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if chunk.endswith(b"\x00"):
                break
            if size > MAX_REPLY_BYTES:
                raise ParseError(f"reply to {command!r} is over {MAX_REPLY_BYTES} bytes")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return decode_reply(b"".join(chunks))


class BraiinsAuthError(ParseError):
    """Braiins OS refused the login or the token."""


async def braiins_replies(session: aiohttp.ClientSession, ep: Endpoint) -> dict[str, Any]:
    base = f"http://{ep.host}:{ep.port}/api/v1"
    async with session.post(
        f"{base}/auth/login", json={"username": ep.username, "password": ep.password}
    ) as resp:
        if resp.status != 200:
            raise BraiinsAuthError(f"login answered HTTP {resp.status}")
        token = (await resp.json(content_type=None)).get("token")
    if not isinstance(token, str):
        raise BraiinsAuthError("login reply has no token")
    replies: dict[str, Any] = {}
    for path in COMMANDS["braiins"]:
        async with session.get(f"{base}/{path}", headers={"Authorization": token}) as resp:
            if resp.status != 200:
                if path in REQUIRED["braiins"]:
                    raise ParseError(f"GET /api/v1/{path} answered HTTP {resp.status}")
                continue  # moved or dropped in this release: parse says what is missing
            replies[path] = decode_reply(await resp.read())
    return replies


async def btminer_v3_call(host: str, port: int, command: str) -> dict[str, Any]:
    """One Whatsminer API v3 read command (``cmd`` or ``cmd:param``), length-framed."""
    cmd, _, param = command.partition(":")
    payload = json.dumps({"cmd": cmd, "param": param or None}).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("<I", len(payload)) + payload)
        await writer.drain()
        (size,) = struct.unpack("<I", await reader.readexactly(4))
        if size > MAX_REPLY_BYTES:
            raise ParseError(f"reply to {command!r} announces {size} bytes")
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ParseError(f"reply to {command!r} ended after {len(exc.partial)} bytes") from None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return decode_reply(body)


async def socket_replies(ep: Endpoint) -> dict[str, Any]:
    """Replies of a cgminer-style or Whatsminer v3 miner; optional commands may fail."""
    if ep.kind not in COMMANDS:
        raise ParseError(f"unknown miner kind {ep.kind!r}")
    replies: dict[str, Any] = {}
    for c in COMMANDS[ep.kind]:
        try:
            if ep.kind == "whatsminer_v3":
                replies[c] = await btminer_v3_call(ep.host, ep.port, c)
            else:
                key = "cmd" if ep.kind == "whatsminer" else "command"
                replies[c] = await cgminer_call(ep.host, ep.port, c, key=key)
        except (OSError, ParseError):
            if c in REQUIRED[ep.kind]:
                raise
    return replies


async def poll_miner(
    ep: Endpoint, timeout_s: float, session: aiohttp.ClientSession | None = None
) -> MinerReading:
    """One miner's reading; never raises for anything the miner or network does."""
    try:
        async with asyncio.timeout(timeout_s):
            if ep.kind == "braiins":
                if session is None:
                    raise ValueError("a braiins miner needs an HTTP session")
                replies = await braiins_replies(session, ep)
            else:
                replies = await socket_replies(ep)
            return parse(ep.kind, ep.miner_id, replies)
    except TimeoutError:
        return failed(
            ep.miner_id,
            "offline",
            f"no complete reply within {timeout_s:g} s from {ep.host}:{ep.port}",
        )
    except (OSError, aiohttp.ClientConnectionError) as exc:
        return failed(
            ep.miner_id,
            "offline",
            f"cannot talk to {ep.host}:{ep.port}: {exc or type(exc).__name__}",
        )
    except (ParseError, UnicodeDecodeError, ValueError, aiohttp.ClientError) as exc:
        return failed(ep.miner_id, "unknown", f"bad reply from {ep.host}:{ep.port}: {exc}")


async def poll_fleet(
    endpoints: Sequence[Endpoint], timeout_s: float = 5.0, concurrency: int = 512
) -> list[MinerReading]:
    """Readings in the order of ``endpoints``; at most ``concurrency`` miners at once."""
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(ep: Endpoint) -> MinerReading:
            async with sem:
                return await poll_miner(ep, timeout_s, session)

        return list(await asyncio.gather(*(one(ep) for ep in endpoints)))
