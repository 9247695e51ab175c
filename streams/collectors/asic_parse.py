"""Miner API responses -> one ``MinerReading`` per miner: pure, no I/O.

Each firmware family is read with the commands it answers (``COMMANDS``); the responses
are the parsed JSON bodies keyed by command. Units are normalised here: hashrate to TH/s
(stock Antminer/LuxOS report GH/s, Whatsminer/Avalon MH/s, Braiins GH/s), power to W.
A firmware that does not report a value gives ``None``, never a guess (stock Antminer and
Avalon report no wall power: the meters are the truth for them).

Why our own parser and client rather than pyasic: pyasic is deprecated in favour of the
Rust asic-rs (notes/domain.md, section 1); the subset needed here (read-only telemetry of
five families) is small, and owning it lets us poll thousands of miners in one asyncio
loop with our own timeouts and per-device error reporting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from schemas.telemetry import AsicFrame, AsicState

MinerKind = Literal["antminer", "avalon", "luxos", "whatsminer", "braiins"]

COMMANDS: dict[str, tuple[str, ...]] = {
    "antminer": ("summary", "stats"),
    "avalon": ("summary", "stats", "version"),
    "luxos": ("summary", "stats", "power"),
    "whatsminer": ("summary", "status"),
    "braiins": ("miner/stats", "cooling/state", "miner/details", "configuration/miner"),
}
"""Commands (cgminer-style ``command``/``cmd``, or Braiins REST paths under /api/v1/)."""

BRAIINS_STATUS: dict[int, AsicState] = {1: "sleeping", 2: "hashing", 3: "sleeping", 4: "sleeping"}
"""Braiins ``MinerStatus``: 1 not started, 2 normal, 3 paused, 4 suspended."""


class ParseError(ValueError):
    """A reply does not have the shape its firmware family should give."""


@dataclass(frozen=True, slots=True)
class MinerReading:
    miner_id: str
    model: str
    hashrate_ths: float
    power_w: float | None
    temp_c: float | None
    fan_rpm: int | None
    state: AsicState
    power_limit_w: float | None = None
    error: str | None = None


def failed(miner_id: str, state: AsicState, reason: str, model: str = "") -> MinerReading:
    """A miner that did not answer (``offline``) or answered nonsense (``unknown``)."""
    return MinerReading(miner_id, model, 0.0, None, None, None, state, None, reason)


def decode_reply(raw: bytes) -> dict[str, Any]:
    """cgminer-style reply bytes -> JSON object. Replies may end with NUL; some firmwares
    put raw control characters or a trailing comma inside, which are tolerated."""
    text = raw.rstrip(b"\x00 \r\n\t").decode("utf-8", errors="strict")
    if not text:
        raise ParseError("empty reply")
    try:
        body = msgspec.json.decode(text)
    except msgspec.DecodeError:
        cleaned = re.sub(r"[\x00-\x1f]", " ", text.replace(",}", "}"))
        try:
            body = msgspec.json.decode(cleaned)
        except msgspec.DecodeError as exc:
            raise ParseError(f"reply is not JSON ({text[:60]!r}...): {exc}") from None
    if not isinstance(body, dict):
        raise ParseError(f"reply is a JSON {type(body).__name__}, not an object")
    out: dict[str, Any] = body
    return out


def check_status(command: str, body: Mapping[str, Any]) -> None:
    """Raise when a cgminer/btminer reply carries an error status (``E``/``F``)."""
    status = body.get("STATUS")
    entry = status[0] if isinstance(status, list) and status else body
    if isinstance(entry, dict) and entry.get("STATUS") in ("E", "F"):
        raise ParseError(f"{command}: miner answered error {entry.get('Code')}: {entry.get('Msg')}")


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _first(body: Mapping[str, Any], section: str, index: int = 0) -> dict[str, Any]:
    items = body.get(section)
    if not isinstance(items, list) or len(items) <= index or not isinstance(items[index], dict):
        raise ParseError(f"reply has no {section}[{index}] object")
    item: dict[str, Any] = items[index]
    return item


def _dig(body: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _bitmain_temps_fans(stats: dict[str, Any]) -> tuple[float | None, int | None]:
    """Hottest chip (``temp_chipN`` = 'a-b-c-d', else ``temp2_N``) and slowest running fan."""
    chips: list[float] = []
    for key, value in stats.items():
        if key.startswith("temp_chip") and isinstance(value, str):
            chips += [float(x) for x in value.split("-") if x.strip().lstrip("-").isdigit()]
    if not any(chips):
        chips = [v for k, val in stats.items() if k.startswith("temp2_") and (v := _num(val))]
    temp = max(chips) if chips and max(chips) > 0 else None
    n_fans = int(_num(stats.get("fan_num")) or 4)
    fans = [int(v) for i in range(1, n_fans + 1) if (v := _num(stats.get(f"fan{i}"))) is not None]
    return temp, (min(fans) if fans else None)


_BRACKET = re.compile(r"(\w+)\[([^\]]*)\]")


def avalon_fields(text: str) -> dict[str, str]:
    """Avalon packs board data into one string: ``Key[value] Key2[v1 v2] ...``."""
    return {k: v.strip() for k, v in _BRACKET.findall(text)}


def _state(hashrate_ths: float) -> AsicState:
    return "hashing" if hashrate_ths > 0 else "unknown"


def parse(kind: str, miner_id: str, replies: Mapping[str, Mapping[str, Any]]) -> MinerReading:
    """One miner's replies -> reading. Raises ``ParseError`` naming what is missing."""
    try:
        parser = _PARSERS[kind]
    except KeyError:
        raise ParseError(f"unknown miner kind {kind!r}; known: {sorted(_PARSERS)}") from None
    for cmd in COMMANDS[kind]:
        if cmd not in replies:
            raise ParseError(f"no reply to {cmd!r}")
        if kind != "braiins":
            check_status(cmd, replies[cmd])
    try:
        return parser(miner_id, replies)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, ParseError):
            raise
        raise ParseError(
            f"{kind} reply has an unexpected shape: {type(exc).__name__}: {exc}"
        ) from exc


def _antminer(miner_id: str, r: Mapping[str, Mapping[str, Any]]) -> MinerReading:
    summary = _first(r["summary"], "SUMMARY")
    ths = (_num(summary.get("GHS 5s")) or 0.0) / 1000.0
    head = _first(r["stats"], "STATS", 0)
    temp, fan = _bitmain_temps_fans(_first(r["stats"], "STATS", 1))
    return MinerReading(
        miner_id, str(head.get("Type", "Antminer")), ths, None, temp, fan, _state(ths)
    )


def _luxos(miner_id: str, r: Mapping[str, Mapping[str, Any]]) -> MinerReading:
    base = _antminer(miner_id, r)
    watts = _num(_first(r["power"], "POWER").get("Watts"))
    return MinerReading(
        base.miner_id, base.model, base.hashrate_ths, watts, base.temp_c, base.fan_rpm, base.state
    )


def _avalon(miner_id: str, r: Mapping[str, Mapping[str, Any]]) -> MinerReading:
    summary = _first(r["summary"], "SUMMARY")
    ths = (_num(summary.get("MHS 5s")) or 0.0) / 1e6
    stats = _first(r["stats"], "STATS")
    packed = next((v for k, v in stats.items() if k.startswith("MM ID") and isinstance(v, str)), "")
    f = avalon_fields(packed)
    tmax = _num(f.get("TMax"))
    board = [v for k in ("HBOTemp", "HBITemp", "ITemp") if (v := _num(f.get(k))) is not None]
    temp = tmax if tmax else (max(board) if board else None)
    fans = [int(v) for i in range(1, 5) if (v := _num(f.get(f"Fan{i}"))) is not None]
    version = _first(r["version"], "VERSION")
    model = str(version.get("PROD") or version.get("MODEL") or "Avalon")
    state: AsicState = "sleeping" if "Idle" in f.get("SYSTEMSTATU", "") else _state(ths)
    return MinerReading(miner_id, model, ths, None, temp, min(fans) if fans else None, state)


def _whatsminer(miner_id: str, r: Mapping[str, Mapping[str, Any]]) -> MinerReading:
    s = _first(r["summary"], "SUMMARY")
    ths = (_num(s.get("MHS 5s")) or 0.0) / 1e6
    temp = _num(s.get("Chip Temp Max")) or _num(s.get("Temperature"))
    fans = [int(v) for k in ("Fan Speed In", "Fan Speed Out") if (v := _num(s.get(k))) is not None]
    off = str(_dig(r["status"], "Msg", "btmineroff")).lower() == "true"
    state: AsicState = "sleeping" if off else _state(ths)
    return MinerReading(
        miner_id,
        "Whatsminer",
        ths,
        _num(s.get("Power")),
        temp,
        min(fans) if fans else None,
        state,
        _num(s.get("Power Limit")),
    )


def _braiins(miner_id: str, r: Mapping[str, Mapping[str, Any]]) -> MinerReading:
    stats = r["miner/stats"]
    ghs = _num(_dig(stats, "miner_stats", "real_hashrate", "last_5s", "gigahash_per_second"))
    if ghs is None:
        raise ParseError("miner/stats has no miner_stats.real_hashrate.last_5s")
    ths = ghs / 1000.0
    watt = _num(_dig(stats, "power_stats", "approximated_consumption", "watt"))
    cooling = r["cooling/state"]
    temp = _num(_dig(cooling, "highest_temperature", "temperature", "degree_c"))
    fans = [int(f["rpm"]) for f in cooling.get("fans") or [] if isinstance(f, dict) and "rpm" in f]
    details = r["miner/details"]
    model = str(_dig(details, "miner_identity", "miner_model") or "Braiins OS")
    state = BRAIINS_STATUS.get(int(details.get("status") or 0), "unknown")
    if state == "hashing" and ths <= 0:
        state = "unknown"
    limit = _num(_dig(r["configuration/miner"], "tuner", "power_target", "watt"))
    return MinerReading(miner_id, model, ths, watt, temp, min(fans) if fans else None, state, limit)


_PARSERS = {
    "antminer": _antminer,
    "avalon": _avalon,
    "luxos": _luxos,
    "whatsminer": _whatsminer,
    "braiins": _braiins,
}


def to_frame(
    readings: Sequence[MinerReading], site_id: str, source_id: str, ts_s: float, seq: int
) -> AsicFrame:
    """One scrape of a rack as a columnar frame; error reasons ride along."""
    errors = [r.error for r in readings]
    limits = [r.power_limit_w for r in readings]
    return AsicFrame(
        site_id=site_id,
        source_id=source_id,
        ts_s=ts_s,
        seq=seq,
        miner_id=[r.miner_id for r in readings],
        model=[r.model for r in readings],
        hashrate_ths=[r.hashrate_ths for r in readings],
        power_w=[r.power_w for r in readings],
        temp_c=[r.temp_c for r in readings],
        fan_rpm=[r.fan_rpm for r in readings],
        state=[r.state for r in readings],
        power_limit_w=None if all(x is None for x in limits) else limits,
        error=None if all(e is None for e in errors) else errors,
    )
