"""Collector configuration files (TOML): which miners and meters to poll.

Fleet (``spillway collect asic FLEET.toml``)::

    site_id = "demo-site"
    rack_size = 50                 # miners per AsicFrame (one message per rack)
    [[miners]]
    id = "s19-0001"; host = "10.1.0.11"; kind = "antminer"   # port default 4028 (80 for braiins)
    [[miners]]
    id = "bos-0001"; host = "10.1.0.12"; kind = "braiins"; username = "root"; password = "..."

Meters (``spillway collect meters METERS.toml``)::

    site_id = "demo-site"
    source_id = "meter-gw-1"
    [[meters]]
    id = "poi"; host = "10.2.0.5"; port = 502; unit_id = 1
    power = { address = 0, type = "float32", scale = 1.0 }       # defaults shown
    energy = { address = 2, type = "float64", scale = 1.0 }      # or energy = false
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.collectors.asic_client import Endpoint
from streams.collectors.asic_parse import COMMANDS
from streams.collectors.modbus_meter import MeterEndpoint, Register, RegisterMap
from streams.errors import TerminalError


class ConfigError(TerminalError, ValueError):
    """A collector config is invalid (names file, entry and key)."""


@dataclass(frozen=True)
class Fleet:
    site_id: str
    rack_size: int
    miners: list[Endpoint]


@dataclass(frozen=True)
class Meters:
    site_id: str
    source_id: str
    meters: list[MeterEndpoint]


def _doc(path: Path | str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def load_fleet(path: Path | str) -> Fleet:
    doc = _doc(path)
    miners = []
    for i, m in enumerate(doc.get("miners", [])):
        where = f"{path}: miners[{i}]"
        try:
            kind = str(m["kind"])
            if kind not in COMMANDS:
                raise ConfigError(f"{where}: kind {kind!r} not one of {sorted(COMMANDS)}")
            miners.append(
                Endpoint(
                    str(m["id"]),
                    str(m["host"]),
                    int(m.get("port", 80 if kind == "braiins" else 4028)),
                    kind,
                    str(m.get("username", "root")),
                    str(m.get("password", "")),
                )
            )
        except KeyError as exc:
            raise ConfigError(f"{where}: missing {exc}") from exc
    if not miners:
        raise ConfigError(f"{path}: no [[miners]]")
    return Fleet(str(doc.get("site_id", "site")), int(doc.get("rack_size", 50)), miners)


def _register(spec: Any, default: Register, where: str) -> Register:
    if not isinstance(spec, dict):
        raise ConfigError(f'{where}: expected a table like {{ address = 0, type = "float32" }}')
    try:
        reg = Register(
            int(spec.get("address", default.address)),
            spec.get("type", default.type),
            float(spec.get("scale", default.scale)),
            spec.get("function", default.function),
        )
        _ = reg.count
    except KeyError as exc:
        raise ConfigError(f"{where}: unknown register type {exc}") from exc
    return reg


def load_meters(path: Path | str) -> Meters:
    doc = _doc(path)
    out = []
    base = RegisterMap()
    for i, m in enumerate(doc.get("meters", [])):
        where = f"{path}: meters[{i}]"
        if "id" not in m or "host" not in m:
            raise ConfigError(f"{where}: needs id and host")
        power = _register(m.get("power", {}), base.power_w, f"{where}.power")
        energy_spec = m.get("energy", {})
        assert base.energy_wh is not None
        energy = (
            None
            if energy_spec is False
            else _register(energy_spec, base.energy_wh, f"{where}.energy")
        )
        out.append(
            MeterEndpoint(
                str(m["id"]),
                str(m["host"]),
                int(m.get("port", 502)),
                int(m.get("unit_id", 1)),
                RegisterMap(power, energy),
            )
        )
    if not out:
        raise ConfigError(f"{path}: no [[meters]]")
    return Meters(str(doc.get("site_id", "site")), str(doc.get("source_id", "meters")), out)
