"""Send one setpoint to one miner through its own firmware API (thin I/O).

Each function returns ``(ok, detail)``: ``ok`` means the device acknowledged the command,
not that its power has moved (the runner measures that). Protocols and their sources:

- LuxOS (TCP 4028): ``logon`` -> ``SESSION[0].SessionID``; ``curtail`` ``<sid>,sleep`` or
  ``<sid>,wakeup``; ``profileset`` ``<sid>,<profile>`` (the highest profile at or below the
  limit, from ``profiles``); ``logoff`` ``<sid>``. docs.luxor.tech/firmware/api/luxminer,
  pyasic ``rpc/luxminer.py``.
- Braiins OS (REST): ``POST /api/v1/auth/login``; ``PUT /api/v1/actions/pause`` and
  ``/resume``; ``PUT /api/v1/performance/power-target`` ``{"watt": N}``. Braiins OS public
  REST API (developer.braiins-os.com openapi.json). Not verified on a device.
- Whatsminer API v2 (TCP 4028): ``get_token`` then AES-encrypted ``power_off``
  (``respbefore``), ``power_on``, ``adjust_power_limit`` (the firmware restarts btminer to
  apply a limit: WhatsminerAPI V2.0.x). See ``crypto``.
- Whatsminer API v3 (TCP 4433, length-framed JSON): ``get.device.info`` for the salt;
  ``set.miner.service`` ``stop``/``start``; ``set.miner.power`` N (applied at run time).
- Avalon (cgminer, TCP 4028): ``ascset`` ``0,softoff,1:<unix ts>`` / ``0,softon,1:<ts>``
  (pyasic ``backends/avalonminer.py``). A power setpoint is refused: workmode watts are
  model-specific and not documented for the corpus models.
- Stock Antminer: no power control in the firmware; the runner cuts its PDU outlet.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from typing import Any

import aiohttp

from schemas.actuation import Action
from streams.actuation import crypto
from streams.collectors.asic_client import MAX_REPLY_BYTES, Endpoint
from streams.collectors.asic_parse import ParseError, decode_reply

Result = tuple[bool, str]


async def cgminer_request(host: str, port: int, payload: dict[str, Any]) -> dict[str, Any]:
    """One JSON request, one reply read to EOF or NUL (cgminer-style socket API)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(json.dumps(payload).encode())
        await writer.drain()
        chunks: list[bytes] = []
        size = 0
        while chunk := await reader.read(65536):
            chunks.append(chunk)
            size += len(chunk)
            if chunk.endswith(b"\x00"):
                break
            if size > MAX_REPLY_BYTES:
                raise ParseError(f"reply over {MAX_REPLY_BYTES} bytes")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return decode_reply(b"".join(chunks))


def _status_ok(reply: dict[str, Any]) -> Result:
    st = (reply.get("STATUS") or [{}])[0] if isinstance(reply.get("STATUS"), list) else {}
    if isinstance(st, dict) and st.get("STATUS") == "S":
        return True, str(st.get("Msg", ""))
    msg = st.get("Msg", reply.get("Msg", reply)) if isinstance(st, dict) else reply
    return False, f"refused: {msg}"


async def luxos(ep: Endpoint, action: Action, power_limit_w: float | None) -> Result:
    logon = await cgminer_request(ep.host, ep.port, {"command": "logon"})
    try:
        sid = str(logon["SESSION"][0]["SessionID"])
    except (KeyError, IndexError, TypeError):
        return False, f"logon refused: {_status_ok(logon)[1]}"
    try:
        if action in ("sleep", "wake"):
            arg = "sleep" if action == "sleep" else "wakeup"
            reply = await cgminer_request(
                ep.host, ep.port, {"command": "curtail", "parameter": f"{sid},{arg}"}
            )
        elif action == "set_power":
            profiles = await cgminer_request(ep.host, ep.port, {"command": "profiles"})
            fitting = [
                p
                for p in profiles.get("PROFILES", [])
                if float(p.get("Watts", 1e12)) <= (power_limit_w or 0.0)
            ]
            if not fitting:
                return False, f"no LuxOS profile at or below {power_limit_w} W"
            best = max(fitting, key=lambda p: float(p["Watts"]))
            reply = await cgminer_request(
                ep.host,
                ep.port,
                {"command": "profileset", "parameter": f"{sid},{best['Profile Name']}"},
            )
        else:
            return False, f"LuxOS has no {action}"
        return _status_ok(reply)
    finally:
        await cgminer_request(ep.host, ep.port, {"command": "logoff", "parameter": sid})


async def braiins(
    session: aiohttp.ClientSession, ep: Endpoint, action: Action, power_limit_w: float | None
) -> Result:
    base = f"http://{ep.host}:{ep.port}/api/v1"
    async with session.post(
        f"{base}/auth/login", json={"username": ep.username, "password": ep.password}
    ) as resp:
        if resp.status != 200:
            return False, f"login answered HTTP {resp.status}"
        token = (await resp.json(content_type=None)).get("token")
    headers = {"Authorization": str(token)}
    if action == "sleep":
        path, body = "actions/pause", None
    elif action == "wake":
        path, body = "actions/resume", None
    elif action == "set_power":
        path, body = "performance/power-target", {"watt": int(power_limit_w or 0)}
    else:
        return False, f"Braiins OS has no {action}"
    async with session.put(f"{base}/{path}", json=body, headers=headers) as resp:
        if 200 <= resp.status < 300:
            return True, f"HTTP {resp.status}"
        return False, f"PUT /api/v1/{path} answered HTTP {resp.status}"


async def whatsminer_v2(ep: Endpoint, action: Action, power_limit_w: float | None) -> Result:
    token = await cgminer_request(ep.host, ep.port, {"cmd": "get_token"})
    msg = token.get("Msg")
    if not isinstance(msg, dict):
        return False, f"get_token refused: {msg}"
    key, sign = crypto.v2_session(ep.password, msg)
    if action == "sleep":
        cmd: dict[str, Any] = {"cmd": "power_off", "respbefore": "true"}
    elif action == "wake":
        cmd = {"cmd": "power_on"}
    elif action == "set_power":
        cmd = {"cmd": "adjust_power_limit", "power_limit": str(int(power_limit_w or 0))}
    else:
        return False, f"Whatsminer has no {action}"
    reply = await _raw_request(ep.host, ep.port, crypto.v2_encrypt(key, sign, cmd))
    if "enc" in reply:
        reply = crypto.v2_decrypt(key, str(reply["enc"]))
    return _status_ok(reply)


async def _raw_request(host: str, port: int, payload: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        await writer.drain()
        data = await reader.read(MAX_REPLY_BYTES)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return decode_reply(data)


async def v3_call(host: str, port: int, request: dict[str, Any]) -> dict[str, Any]:
    payload = json.dumps(request).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("<I", len(payload)) + payload)
        await writer.drain()
        (size,) = struct.unpack("<I", await reader.readexactly(4))
        if size > MAX_REPLY_BYTES:
            raise ParseError(f"reply announces {size} bytes")
        body = await reader.readexactly(size)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return decode_reply(body)


async def whatsminer_v3(ep: Endpoint, action: Action, power_limit_w: float | None) -> Result:
    info = await v3_call(ep.host, ep.port, {"cmd": "get.device.info", "param": None})
    salt = info.get("msg", {}).get("salt") if isinstance(info.get("msg"), dict) else None
    if not isinstance(salt, str):
        return False, "get.device.info carries no salt"
    param: str | int
    if action in ("sleep", "wake"):
        cmd, param = "set.miner.service", ("stop" if action == "sleep" else "start")
    elif action == "set_power":
        cmd, param = "set.miner.power", int(power_limit_w or 0)
    else:
        return False, f"Whatsminer v3 has no {action}"
    ts = int(time.time())
    account = ep.username if ep.username != "root" else "super"
    request = {
        "cmd": cmd,
        "param": param,
        "ts": ts,
        "account": account,
        "token": crypto.v3_token(cmd, ep.password, salt, ts),
    }
    reply = await v3_call(ep.host, ep.port, request)
    if reply.get("code") == 0:
        return True, str(reply.get("msg", "ok"))
    return False, f"refused: code {reply.get('code')} {reply.get('msg')}"


async def avalon(ep: Endpoint, action: Action, power_limit_w: float | None) -> Result:
    if action not in ("sleep", "wake"):
        return False, "Avalon: no documented power setpoint for this model; use sleep"
    verb = "softoff" if action == "sleep" else "softon"
    reply = await cgminer_request(
        ep.host,
        ep.port,
        {"command": "ascset", "parameter": f"0,{verb},1:{int(time.time())}"},
    )
    return _status_ok(reply)


FIRMWARE_KINDS = ("luxos", "braiins", "whatsminer", "whatsminer_v3", "avalon")
"""Kinds whose firmware takes commands; any other kind is reached through its outlet."""


async def send(
    ep: Endpoint,
    action: Action,
    power_limit_w: float | None,
    session: aiohttp.ClientSession | None = None,
) -> Result:
    """One command to one miner; protocol errors come back as ``(False, why)``."""
    try:
        if ep.kind == "luxos":
            return await luxos(ep, action, power_limit_w)
        if ep.kind == "braiins":
            if session is None:
                raise ValueError("a braiins miner needs an HTTP session")
            return await braiins(session, ep, action, power_limit_w)
        if ep.kind == "whatsminer":
            return await whatsminer_v2(ep, action, power_limit_w)
        if ep.kind == "whatsminer_v3":
            return await whatsminer_v3(ep, action, power_limit_w)
        if ep.kind == "avalon":
            return await avalon(ep, action, power_limit_w)
        return False, f"{ep.kind}: firmware takes no power commands; cut its outlet"
    except (OSError, aiohttp.ClientError) as exc:
        return False, f"cannot talk to {ep.host}:{ep.port}: {exc or type(exc).__name__}"
    except (ParseError, ValueError, KeyError, UnicodeDecodeError) as exc:
        return False, f"bad reply from {ep.host}:{ep.port}: {exc}"
    except asyncio.IncompleteReadError as exc:
        return False, f"reply from {ep.host}:{ep.port} cut short after {len(exc.partial)} bytes"
