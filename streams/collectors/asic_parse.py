"""Miner API responses -> one ``MinerReading`` per miner: pure, no I/O.

Each firmware family is read with the commands it answers (``COMMANDS``); the responses
are the parsed JSON bodies keyed by command. Only the commands in ``REQUIRED`` must answer:
a miner that skips an optional one (no ``summary``, a Braiins endpoint a release moved)
still gives a reading, with the fields that command carried left ``None`` and the reason
kept in ``MinerReading.missing``. Units are normalised here: hashrate to TH/s (stock
Antminer/LuxOS/Braiins report GH/s, Whatsminer v1/v2, Avalon and Auradine MH/s, Whatsminer
v3 TH/s), power to W. A value the firmware does not report is ``None`` with a reason, never
0 and never a guess (stock Antminer reports no wall power: the meters are the truth).

Which library reads which firmware, and why this parser rather than pyasic for these
families: docs/collectors.md (measured on tests/collectors/corpus).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from schemas.telemetry import AsicFrame, AsicState
from streams.errors import TerminalError

MinerKind = Literal[
    "antminer", "avalon", "luxos", "whatsminer", "whatsminer_v3", "braiins", "auradine"
]

COMMANDS: dict[str, tuple[str, ...]] = {
    "antminer": ("summary", "stats"),
    "avalon": ("summary", "stats", "version"),
    "luxos": ("summary", "stats", "power"),
    "whatsminer": ("summary", "status"),
    "whatsminer_v3": ("get.miner.status:summary", "get.miner.status:edevs", "get.device.info"),
    "braiins": (
        "miner/stats",
        "cooling/state",
        "miner/details",
        "configuration/miner",
        "performance/tuner-state",
    ),
    "auradine": ("summary", "fan", "temperature", "psu", "mode"),
}
"""Commands asked of each family (cgminer-style ``command``/``cmd``; Whatsminer v3
``cmd:param``; Braiins REST paths under /api/v1/)."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "antminer": ("stats",),
    "avalon": ("stats",),
    "luxos": ("stats",),
    "whatsminer": ("summary",),
    "whatsminer_v3": ("get.miner.status:summary",),
    "braiins": ("miner/stats",),
    "auradine": ("summary",),
}
"""Without these no reading; every other command is optional (its fields become None)."""

BRAIINS_STATUS: dict[int, AsicState] = {1: "sleeping", 2: "hashing", 3: "sleeping", 4: "sleeping"}
"""Braiins ``MinerStatus``: 1 not started, 2 normal, 3 paused, 4 suspended."""

RATE_UNIT_THS = {"MH": 1e-6, "GH": 1e-3, "TH": 1.0}
"""Bitmain ``stats`` ``rate_unit`` -> factor to TH/s (``GHS 5s`` is in that unit)."""


class ParseError(TerminalError, ValueError):
    """A reply does not have the shape its firmware family should give."""


@dataclass(frozen=True, slots=True)
class MinerReading:
    miner_id: str
    model: str
    hashrate_ths: float | None
    power_w: float | None
    temp_c: float | None
    fan_rpm: int | None
    state: AsicState
    power_limit_w: float | None = None
    error: str | None = None
    missing: tuple[tuple[str, str], ...] = ()
    """(field, reason) for each field left None, and for an ``unknown`` state."""

    def reason(self, name: str) -> str | None:
        return dict(self.missing).get(name)


def failed(miner_id: str, state: AsicState, reason: str, model: str = "") -> MinerReading:
    """A miner that did not answer (``offline``) or answered nonsense (``unknown``). Its
    hashrate is 0.0, not None: the frame column has no null, and ``state`` plus ``error``
    say that nothing was read."""
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
    """Raise when a reply carries an error status: cgminer/btminer ``STATUS`` ``E``/``F``,
    or Whatsminer v3's non-zero ``code``."""
    status = body.get("STATUS")
    entry = status[0] if isinstance(status, list) and status else body
    if isinstance(entry, dict) and entry.get("STATUS") in ("E", "F"):
        raise ParseError(f"{command}: miner answered error {entry.get('Code')}: {entry.get('Msg')}")
    code = body.get("code")
    if isinstance(code, int) and code != 0 and "msg" in body:
        raise ParseError(f"{command}: miner answered error {code}: {body.get('msg')}")


def _num(value: Any) -> float | None:
    """A number, or a string like ``"58.94W"`` / ``"4052.00 RPM"``; -1 is "not available"
    on btminer (pyasic treats it so too)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, str):
        m = re.match(r"\s*(-?\d+(?:\.\d+)?)", value)
        value = m.group(1) if m else value
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if out == -1 else out


def _first(body: Mapping[str, Any] | None, section: str, index: int = 0) -> dict[str, Any]:
    items = body.get(section) if body is not None else None
    if not isinstance(items, list) or len(items) <= index or not isinstance(items[index], dict):
        raise ParseError(f"reply has no {section}[{index}] object")
    item: dict[str, Any] = items[index]
    return item


def _maybe_first(body: Mapping[str, Any] | None, section: str, index: int = 0) -> dict[str, Any]:
    try:
        return _first(body, section, index)
    except ParseError:
        return {}


def _dig(body: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _pick(obj: Mapping[str, Any], keys: Sequence[str], scale: float = 1.0) -> float | None:
    """The first of ``keys`` that holds a number, times ``scale``."""
    for key in keys:
        if (v := _num(obj.get(key))) is not None:
            return v * scale
    return None


class _Draft:
    """Field values of one reading as a parser finds them, and why each absent one is."""

    def __init__(self, miner_id: str, model: str) -> None:
        self.miner_id = miner_id
        self.model = model
        self.values: dict[str, Any] = {}
        self.why: dict[str, str] = {}
        self.sleeping: bool | None = None

    def put(self, name: str, value: Any, reason: str) -> None:
        """Keep ``value``, or ``reason`` when it is None; the first value given wins (callers
        put sources in order of preference), and a value clears an earlier reason."""
        if name in self.values:
            return
        if value is not None:
            self.values[name] = value
            self.why.pop(name, None)
        elif reason:
            self.why.setdefault(name, reason)

    def fans(self, rpms: Sequence[float], hydro: bool, absent: str) -> None:
        """Slowest fan; a hydro unit has none (or reports 0s) and that is not a failure."""
        if hydro:
            self.put("fan_rpm", None, "hydro-cooled: no fans to read (not a failure)")
        else:
            self.put("fan_rpm", int(min(rpms)) if rpms else None, absent)

    def reading(self) -> MinerReading:
        ths = self.values.get("hashrate_ths")
        state: AsicState
        if self.sleeping:
            state = "sleeping"
        elif ths is not None and ths > 0:
            state = "hashing"
        else:
            state = "unknown"
            self.why["state"] = (
                self.why.get("hashrate_ths", "no hashrate")
                if ths is None
                else "reports 0 TH/s and no sleep or pause flag"
            )
        order = ("hashrate_ths", "power_w", "temp_c", "fan_rpm", "power_limit_w", "state")
        return MinerReading(
            self.miner_id,
            self.model,
            ths,
            self.values.get("power_w"),
            self.values.get("temp_c"),
            self.values.get("fan_rpm"),
            state,
            self.values.get("power_limit_w"),
            None,
            tuple((k, self.why[k]) for k in order if k in self.why),
        )


def _no_reply(cmd: str) -> str:
    return f"no usable reply to {cmd!r}"


def _bitmain_temps_fans(stats: dict[str, Any]) -> tuple[float | None, list[float]]:
    """Hottest chip (``temp_chipN`` = 'a-b-c-d', else ``temp2_N``) and the fans' RPMs."""
    chips: list[float] = []
    for key, value in stats.items():
        if key.startswith("temp_chip") and isinstance(value, str):
            chips += [float(x) for x in value.split("-") if x.strip().lstrip("-").isdigit()]
    if not any(chips):
        chips = [v for k, val in stats.items() if k.startswith("temp2_") and (v := _num(val))]
    temp = max(chips) if chips and max(chips) > 0 else None
    n_fans = int(_num(stats.get("fan_num")) or 4)
    fans = [v for i in range(1, n_fans + 1) if (v := _num(stats.get(f"fan{i}"))) is not None]
    return temp, fans


_BRACKET = re.compile(r"(\w+)\[([^\]]*)\]")


def avalon_fields(text: str) -> dict[str, str]:
    """Avalon packs board data into one string: ``Key[value] Key2[v1 v2] ...``."""
    return {k: v.strip() for k, v in _BRACKET.findall(text)}


def parse(kind: str, miner_id: str, replies: Mapping[str, Mapping[str, Any]]) -> MinerReading:
    """One miner's replies -> reading. Raises ``ParseError`` when a required reply is
    missing or has the wrong shape; an optional reply that is missing or an error only
    leaves its fields None, with the reason."""
    try:
        parser = _PARSERS[kind]
    except KeyError:
        raise ParseError(f"unknown miner kind {kind!r}; known: {sorted(_PARSERS)}") from None
    usable: dict[str, Mapping[str, Any]] = {}
    for cmd in COMMANDS[kind]:
        body = replies.get(cmd)
        required = cmd in REQUIRED[kind]
        if body is None:
            if required:
                raise ParseError(f"no reply to {cmd!r}")
            continue
        if kind != "braiins":
            try:
                check_status(cmd, body)
            except ParseError:
                if required:
                    raise
                continue
        usable[cmd] = body
    try:
        return parser(miner_id, usable)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, ParseError):
            raise
        raise ParseError(
            f"{kind} reply has an unexpected shape: {type(exc).__name__}: {exc}"
        ) from exc


Replies = Mapping[str, Mapping[str, Any]]


def _antminer_draft(miner_id: str, r: Replies) -> _Draft:
    head = _first(r["stats"], "STATS", 0)
    body = _first(r["stats"], "STATS", 1)
    d = _Draft(miner_id, str(head.get("Type", "Antminer")))
    # summary's GHS 5s is GH/s by name; stats' follows rate_unit (GH on S19/S21, TH on
    # some newer stock releases). Without a summary reply the stats still say it hashes.
    summary = _maybe_first(r.get("summary"), "SUMMARY")
    unit = RATE_UNIT_THS.get(str(body.get("rate_unit", "GH")).upper()[:2], 1e-3)
    d.put("hashrate_ths", _pick(summary, ["GHS 5s"], 1e-3), "")
    d.put("hashrate_ths", _pick(body, ["GHS 5s", "GHS av"], unit), "no GHS 5s in summary or stats")
    temp, fans = _bitmain_temps_fans(body)
    d.put("temp_c", temp, "no chip temperature above 0 in stats")
    d.fans(fans, "hyd" in d.model.lower(), "no fanN in stats")
    return d


def _antminer(miner_id: str, r: Replies) -> MinerReading:
    d = _antminer_draft(miner_id, r)
    d.put("power_w", None, "stock Bitmain firmware reports no wall power; use the meters")
    d.put("power_limit_w", None, "stock Bitmain firmware reports no power limit")
    return d.reading()


def _luxos(miner_id: str, r: Replies) -> MinerReading:
    d = _antminer_draft(miner_id, r)
    power = _maybe_first(r.get("power"), "POWER")
    d.put("power_w", _pick(power, ["Watts"]), _no_reply("power"))
    d.put("power_limit_w", None, "LuxOS sets power by profile; no limit field is read")
    return d.reading()


def _avalon(miner_id: str, r: Replies) -> MinerReading:
    stats = _first(r["stats"], "STATS")
    packed = next((v for k, v in stats.items() if k.startswith("MM ID") and isinstance(v, str)), "")
    f = avalon_fields(packed)
    version = _maybe_first(r.get("version"), "VERSION")
    d = _Draft(miner_id, str(version.get("PROD") or version.get("MODEL") or "Avalon"))
    summary = _maybe_first(r.get("summary"), "SUMMARY")
    d.put("hashrate_ths", _pick(summary, ["MHS 5s"], 1e-6), "")
    d.put("hashrate_ths", _pick(f, ["GHSspd"], 1e-3), "no MHS 5s in summary nor GHSspd in stats")
    tmax = _num(f.get("TMax"))
    board = [v for k in ("HBOTemp", "HBITemp", "ITemp") if (v := _num(f.get(k))) is not None]
    d.put("temp_c", tmax or (max(board) if board else None), "no TMax or board temperature")
    fans = [v for i in range(1, 5) if (v := _num(f.get(f"Fan{i}"))) is not None]
    d.fans(fans, False, "no FanN in stats")
    # WALLPOWER and MPO as pyasic reads them (backends/avalonminer.py _get_wattage and
    # _get_wattage_limit); PS[...] is not documented field by field, so it is not read.
    d.put("power_w", _num(f.get("WALLPOWER")), "no WALLPOWER in stats (older MM firmware)")
    d.put("power_limit_w", _num(f.get("MPO")), "no MPO in stats")
    d.sleeping = "Idle" in f.get("SYSTEMSTATU", "")
    return d.reading()


def _whatsminer(miner_id: str, r: Replies) -> MinerReading:
    s = _first(r["summary"], "SUMMARY")
    d = _Draft(miner_id, "Whatsminer")
    # Newer btminer releases drop "MHS 5s"; "HS RT" (real-time, MH/s like the others) or
    # the 1 min / overall averages stand in, in that order.
    d.put(
        "hashrate_ths",
        _pick(s, ["MHS 5s", "HS RT", "MHS 1m", "MHS av"], 1e-6),
        "none of MHS 5s, HS RT, MHS 1m, MHS av in summary",
    )
    d.put("power_w", _pick(s, ["Power", "Power_RT"]), "no Power or Power_RT in summary")
    d.put("power_limit_w", _pick(s, ["Power Limit"]), "no Power Limit in summary")
    d.put("temp_c", _pick(s, ["Chip Temp Max", "Temperature"]), "no chip temperature")
    fans = [v for k in ("Fan Speed In", "Fan Speed Out") if (v := _num(s.get(k))) is not None]
    d.fans(fans, s.get("Liquid Cooling") is True, "no Fan Speed In/Out in summary")
    msg = _dig(r.get("status"), "Msg") or {}
    # "btmineroff" (API 1.x/2.0) became "mineroff" in later releases (pyasic _is_mining).
    off = msg.get("mineroff", msg.get("btmineroff")) if isinstance(msg, dict) else None
    d.sleeping = str(off).lower() == "true"
    return d.reading()


def _whatsminer_v3(miner_id: str, r: Replies) -> MinerReading:
    s = _dig(r["get.miner.status:summary"], "msg", "summary")
    if not isinstance(s, dict):
        raise ParseError("get.miner.status:summary has no msg.summary object")
    model = _dig(r.get("get.device.info"), "msg", "miner", "type")
    d = _Draft(miner_id, str(model) if model else "Whatsminer")
    # API v3 reports TH/s and W directly (pyasic BTMinerV3: hash-realtime, power-realtime).
    d.put(
        "hashrate_ths",
        _pick(s, ["hash-realtime", "hash-average"]),
        "no hash-realtime in msg.summary",
    )
    d.put("power_w", _pick(s, ["power-realtime"]), "no power-realtime in msg.summary")
    d.put("power_limit_w", _pick(s, ["power-limit"]), "no power-limit in msg.summary")
    edevs = _dig(r.get("get.miner.status:edevs"), "msg", "edevs")
    temps = [v for b in edevs or [] if isinstance(b, dict) and (v := _num(b.get("chip-temp-max")))]
    d.put("temp_c", max(temps) if temps else None, "no chip-temp-max in get.miner.status:edevs")
    fans = [v for k in ("fan-speed-in", "fan-speed-out") if (v := _num(s.get(k))) is not None]
    d.fans(fans, False, "no fan-speed-in/out in msg.summary")
    return d.reading()


def _braiins(miner_id: str, r: Replies) -> MinerReading:
    stats = r["miner/stats"]
    ghs = _num(_dig(stats, "miner_stats", "real_hashrate", "last_5s", "gigahash_per_second"))
    if ghs is None:
        raise ParseError("miner/stats has no miner_stats.real_hashrate.last_5s")
    details = r.get("miner/details")
    d = _Draft(miner_id, str(_dig(details, "miner_identity", "miner_model") or "Braiins OS"))
    d.put("hashrate_ths", ghs / 1000.0, "")
    d.put(
        "power_w",
        _num(_dig(stats, "power_stats", "approximated_consumption", "watt")),
        "no power_stats.approximated_consumption in miner/stats",
    )
    cooling = r.get("cooling/state")
    d.put(
        "temp_c",
        _num(_dig(cooling, "highest_temperature", "temperature", "degree_c")),
        _no_reply("cooling/state"),
    )
    if cooling is None:
        d.put("fan_rpm", None, _no_reply("cooling/state"))
    else:
        fans = [
            float(f["rpm"]) for f in cooling.get("fans") or [] if isinstance(f, dict) and "rpm" in f
        ]
        # An empty fan list is how BOS reports hydro/immersion cooling (API 1.4.0 modes).
        d.fans(fans, not fans, "")
    # The power target moved: configuration/miner (tuner.power_target) on 25.07, the
    # tuner state (mode_state.powertargetmodestate.current_target) where that is gone.
    d.put(
        "power_limit_w",
        _num(_dig(r.get("configuration/miner"), "tuner", "power_target", "watt")),
        "",
    )
    d.put(
        "power_limit_w",
        _num(
            _dig(
                r.get("performance/tuner-state"),
                "mode_state",
                "powertargetmodestate",
                "current_target",
                "watt",
            )
        ),
        "no power target in configuration/miner or performance/tuner-state",
    )
    status = BRAIINS_STATUS.get(int(_num(_dig(details, "status")) or 0))
    d.sleeping = status == "sleeping"
    return d.reading()


def _auradine(miner_id: str, r: Replies) -> MinerReading:
    s = _first(r["summary"], "SUMMARY")
    d = _Draft(miner_id, "Auradine")
    d.put("hashrate_ths", _pick(s, ["MHS 5s", "MHS 1m"], 1e-6), "no MHS 5s in summary")
    psu = _maybe_first(r.get("psu"), "PSU")
    d.put("power_w", _pick(psu, ["PowerIn"]), "no PSU PowerIn (psu reply)")
    mode = _maybe_first(r.get("mode"), "Mode")
    d.put("power_limit_w", _pick(mode, ["Power"]), "no Mode Power (mode reply)")
    chips = [
        v
        for board in (r.get("temperature") or {}).get("Temperature") or []
        if isinstance(board, dict)
        for t in board.get("ChipTemp") or []
        if isinstance(t, dict) and (v := _num(t.get("Temperature"))) is not None
    ]
    d.put("temp_c", round(max(chips), 2) if chips else None, "no ChipTemp (temperature reply)")
    fan_list = (r.get("fan") or {}).get("Fan") or []
    fans = [v for f in fan_list if isinstance(f, dict) and (v := _num(f.get("Speed"))) is not None]
    d.fans(fans, False, "no Fan speeds (fan reply)")
    d.sleeping = str(mode.get("Sleep", "")).lower() == "on"
    return d.reading()


_PARSERS = {
    "antminer": _antminer,
    "avalon": _avalon,
    "luxos": _luxos,
    "whatsminer": _whatsminer,
    "whatsminer_v3": _whatsminer_v3,
    "braiins": _braiins,
    "auradine": _auradine,
}


def to_frame(
    readings: Sequence[MinerReading], site_id: str, source_id: str, ts_s: float, seq: int
) -> AsicFrame:
    """One scrape of a rack as a columnar frame; error reasons ride along.

    The frame's hashrate column has no null (schemas/telemetry.py): an unread hashrate
    goes as 0.0 with state ``unknown`` and its reason in ``error``, never as a reading."""
    errors = [
        r.error or (r.reason("hashrate_ths") if r.hashrate_ths is None else None) for r in readings
    ]
    limits = [r.power_limit_w for r in readings]
    return AsicFrame(
        site_id=site_id,
        source_id=source_id,
        ts_s=ts_s,
        seq=seq,
        miner_id=[r.miner_id for r in readings],
        model=[r.model for r in readings],
        hashrate_ths=[r.hashrate_ths or 0.0 for r in readings],
        power_w=[r.power_w for r in readings],
        temp_c=[r.temp_c for r in readings],
        fan_rpm=[r.fan_rpm for r in readings],
        state=[r.state for r in readings],
        power_limit_w=None if all(x is None for x in limits) else limits,
        error=None if all(e is None for e in errors) else errors,
    )
