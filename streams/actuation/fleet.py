"""Actuation fleet file (TOML): the collectors' fleet plus tier, nominal watts and outlet.

::

    site_id = "demo-site"
    [[pdus]]
    id = "pdu-a"; host = "10.3.0.2"; port = 502; unit = 1
    [[miners]]
    id = "lux-0001"; host = "10.1.0.11"; kind = "luxos"; tier = 0; nominal_w = 3250
    outlet = { pdu = "pdu-a", coil = 7, power_register = 7 }      # optional
    [[miners]]
    id = "s19-0002"; host = "10.1.0.12"; kind = "antminer"; outlet = { pdu = "pdu-a", coil = 8 }

    [gpu]                  # optional: this host's GPUs as the last curtailment tier (NVML)
    node = "gpu-node-01"; cappable = ["batch"]; tenants = { "0" = "batch", "1" = "serving" }
    min_cap_frac = 0.6; max_duration_s = 7200

A stock ``antminer`` needs an outlet: its firmware takes no power commands.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.actuation.delivery import Device
from streams.actuation.gpu_caps import CapPolicy
from streams.actuation.pdu import Outlet
from streams.collectors.asic_client import Endpoint
from streams.collectors.config import ConfigError

KINDS = ("luxos", "braiins", "whatsminer", "whatsminer_v3", "avalon", "antminer")
DEFAULT_PORT = {"braiins": 80, "whatsminer_v3": 4433}


@dataclass(frozen=True)
class GpuSpec:
    node: str
    tenants: dict[int, str]
    policy: CapPolicy


@dataclass(frozen=True)
class ActuationFleet:
    site_id: str
    devices: list[Device]
    endpoints: dict[str, Endpoint]
    outlets: dict[str, Outlet]
    gpu: GpuSpec | None = None


def gpu_from_doc(doc: dict[str, Any], where: str) -> GpuSpec | None:
    g = doc.get("gpu")
    if g is None:
        return None
    try:
        default = CapPolicy()
        policy = CapPolicy(
            min_cap_frac=float(g.get("min_cap_frac", default.min_cap_frac)),
            max_duration_s=float(g.get("max_duration_s", default.max_duration_s)),
            tenants=frozenset(str(t) for t in g.get("cappable", [])),
        )
        tenants = {int(i): str(t) for i, t in g.get("tenants", {}).items()}
        return GpuSpec(str(g["node"]), tenants, policy)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{where}: [gpu]: {exc!r}") from exc


def fleet_from_doc(doc: dict[str, Any], where: str = "fleet") -> ActuationFleet:
    site = str(doc.get("site_id", "site"))
    pdus = {str(p["id"]): p for p in doc.get("pdus", [])}
    devices: list[Device] = []
    endpoints: dict[str, Endpoint] = {}
    outlets: dict[str, Outlet] = {}
    for i, m in enumerate(doc.get("miners", [])):
        at = f"{where}: miners[{i}]"
        try:
            kind = str(m["kind"])
            if kind not in KINDS:
                raise ConfigError(f"{at}: kind {kind!r} not one of {list(KINDS)}")
            mid = str(m["id"])
            outlet_id = None
            if "outlet" in m:
                spec = m["outlet"]
                pdu = pdus.get(str(spec["pdu"]))
                if pdu is None:
                    raise ConfigError(f"{at}: outlet names unknown pdu {spec['pdu']!r}")
                outlet_id = f"{spec['pdu']}/{spec['coil']}"
                reg = spec.get("power_register")
                outlets[outlet_id] = Outlet(
                    outlet_id,
                    str(pdu["host"]),
                    int(pdu.get("port", 502)),
                    int(pdu.get("unit", 1)),
                    int(spec["coil"]),
                    None if reg is None else int(reg),
                )
            if kind == "antminer" and outlet_id is None:
                raise ConfigError(f"{at}: a stock antminer can only be curtailed by its outlet")
            devices.append(
                Device(
                    mid,
                    kind,
                    int(m.get("tier", 0)),
                    float(m.get("nominal_w", 3000.0)),
                    outlet_id,
                    site,
                )
            )
            endpoints[mid] = Endpoint(
                mid,
                str(m["host"]),
                int(m.get("port", DEFAULT_PORT.get(kind, 4028))),
                kind,
                str(m.get("username", "root")),
                str(m.get("password", "")),
            )
        except KeyError as exc:
            raise ConfigError(f"{at}: missing {exc}") from exc
    if not devices:
        raise ConfigError(f"{where}: no [[miners]]")
    return ActuationFleet(site, devices, endpoints, outlets, gpu_from_doc(doc, where))


def load_actuation_fleet(path: Path | str) -> ActuationFleet:
    try:
        doc = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return fleet_from_doc(doc, str(path))
