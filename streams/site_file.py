"""Load a site TOML file (``infra/sites/*.toml``) into ``SiteConfig`` plus the simulator's
``SimSpec``, with errors that name the file and the field.

The contract may be written in a friendly form, blocks by local hour of day over a range
of local dates, which is expanded here to UTC ``ContractBlock``s (DST days included); see
the header of ``infra/sites/reference-400mw.toml`` for the format.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from schemas.site import (
    AsicModel,
    CurtailmentPolicy,
    GpuPool,
    MaxStaleness,
    Meter,
    PeakWindow,
    SiteConfig,
)
from streams.decisions.peak_risk import RiskFileError, with_risk_windows
from streams.errors import TerminalError
from streams.sim.spec import AiSpike, JobSpec, SimSpec


class SiteFileError(TerminalError, ValueError):
    """A site file is unreadable or invalid; the message names the file and every bad field.

    Retrying does not help: the file must be fixed.
    """


class SiteFile(msgspec.Struct, kw_only=True, frozen=True):
    site: SiteConfig
    sim: SimSpec
    path: str


# Which struct each table (or array of tables) is converted to, for the unknown-key check.
_TABLES: dict[str, type[msgspec.Struct]] = {
    "": SiteConfig,
    "asic_models": AsicModel,
    "gpu_pools": GpuPool,
    "meters": Meter,
    "policy": CurtailmentPolicy,
    "policy.peak_windows": PeakWindow,
    "max_staleness": MaxStaleness,
    "sim": SimSpec,
    "sim.jobs": JobSpec,
    "sim.ai_spikes": AiSpike,
}
_EXTRA_KEYS = {"": {"sim"}}
_CONTRACT_KEYS = {"first_day", "last_day", "blocks", "fixed"}
_BLOCK_KEYS = {"from_hour", "to_hour", "mw", "price_usd_per_mwh"}
_FIXED_KEYS = {"start", "end", "mw", "price_usd_per_mwh"}


def load_site(path: str | Path) -> SiteConfig:
    """The ``SiteConfig`` of a site file (raises ``SiteFileError``)."""
    return load_site_file(path).site


def load_site_file(path: str | Path) -> SiteFile:
    """Read, validate and convert a site file (raises ``SiteFileError``)."""
    name = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SiteFileError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SiteFileError(f"{name}: not valid TOML: {exc}") from exc
    return parse_site(raw, name, Path(path).parent)


def parse_site(raw: Mapping[str, Any], name: str = "<site>", base_dir: Path = Path()) -> SiteFile:
    """Validate a TOML document already parsed into ``raw``; ``name`` prefixes errors;
    ``base_dir``: where the file keys it reads at load (``four_cp_risk_file``) are."""
    problems = list(_unknown_keys(raw))
    if "four_cp_risk_windows" in raw:
        problems.append("four_cp_risk_windows: derived from four_cp_risk_file, not written")
    data = {k: v for k, v in raw.items() if k != "sim"}
    tz_name = data.get("timezone", "America/Chicago")
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: unknown time zone {tz_name!r}")
        tz = ZoneInfo("UTC")
    if "contract" in data:
        blocks, contract_problems = expand_contract(data["contract"], tz)
        problems.extend(contract_problems)
        data["contract"] = blocks
    if problems:
        raise SiteFileError(_report(name, problems))
    try:
        site = msgspec.convert(data, SiteConfig)
    except msgspec.ValidationError as exc:
        raise SiteFileError(_report(name, [_msgspec_problem(str(exc), "")])) from None
    try:
        sim = msgspec.convert(raw.get("sim", {}), SimSpec)
    except msgspec.ValidationError as exc:
        raise SiteFileError(_report(name, [_msgspec_problem(str(exc), "sim.")])) from None
    problems = list(check_site(site)) + list(check_sim(sim, site))
    if problems:
        raise SiteFileError(_report(name, problems))
    try:
        site = with_risk_windows(site, base_dir)
    except RiskFileError as exc:
        raise SiteFileError(_report(name, [f"four_cp_risk_file: {exc}"])) from None
    return SiteFile(site=site, sim=sim, path=name)


def _report(name: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{name}: {problems[0]}"
    return f"{name}: {len(problems)} problems:\n  " + "\n  ".join(problems)


_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _msgspec_problem(message: str, prefix: str) -> str:
    """``Expected `float`, got `str` - at `$.a[2].b``` -> ``a[2].b: expected float, got str``."""
    m = _AT.match(message)
    what = (m.group("what") if m else message).replace("`", "")
    path = (m.group("path") or "") if m else ""
    where = (prefix + path.lstrip(".")).rstrip(".") or "(top level)"
    return f"{where}: {what[:1].lower()}{what[1:]}"


def _unknown_keys(raw: Mapping[str, Any]) -> Iterator[str]:
    """Keys the structs do not know: a typo would otherwise fall back to a default silently."""

    def check(table: Any, key: str, where: str) -> Iterator[str]:
        if not isinstance(table, Mapping):
            return
        known = {f.name for f in msgspec.structs.fields(_TABLES[key])} | _EXTRA_KEYS.get(key, set())
        for k, v in table.items():
            path = f"{where}.{k}" if where else k
            if k not in known:
                yield f"{path}: unknown key (known: {', '.join(sorted(known))})"
                continue
            sub = f"{key}.{k}" if key else k
            if sub in _TABLES:
                if isinstance(v, list):
                    for i, item in enumerate(v):
                        yield from check(item, sub, f"{path}[{i}]")
                else:
                    yield from check(v, sub, path)

    yield from check(raw, "", "")


# --- contract ---------------------------------------------------------------------------


def expand_contract(spec: Any, tz: dt.tzinfo) -> tuple[list[dict[str, float]], list[str]]:
    """Expand the friendly contract table to ContractBlock dicts sorted by start.

    ``blocks`` (local hours ``from_hour``..``to_hour`` on every local day from ``first_day``
    to ``last_day`` inclusive) and ``fixed`` (explicit ``start``/``end`` datetimes with an
    offset) may be combined; blocks must not overlap. A plain list of ContractBlock tables
    (``start_s``, ``end_s``, ``mw``, ``price_usd_per_mwh``) is accepted as is.
    """
    if isinstance(spec, list):
        return list(spec), []
    if not isinstance(spec, Mapping):
        return [], ["contract: expected a table or an array of tables"]
    problems: list[str] = []
    for k in spec:
        if k not in _CONTRACT_KEYS:
            problems.append(
                f"contract.{k}: unknown key (known: {', '.join(sorted(_CONTRACT_KEYS))})"
            )
    out: list[dict[str, float]] = []
    blocks = spec.get("blocks", [])
    if blocks:
        first, last = spec.get("first_day"), spec.get("last_day")
        for key, day in (("first_day", first), ("last_day", last)):
            if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
                problems.append(f"contract.{key}: expected a local date like 2026-11-01")
        if not problems and isinstance(first, dt.date) and isinstance(last, dt.date):
            if last < first:
                problems.append(f"contract.last_day: {last} is before first_day {first}")
            hours = _check_blocks(blocks, problems)
            if not problems:
                out.extend(_daily_blocks(hours, first, last, tz))
    for i, fixed in enumerate(spec.get("fixed", [])):
        where = f"contract.fixed[{i}]"
        block = _fixed_block(fixed, where, problems)
        if block:
            out.append(block)
    if not blocks and not spec.get("fixed"):
        problems.append("contract: no blocks and no fixed blocks: the site would buy nothing")
    out.sort(key=lambda b: b["start_s"])
    for a, b in zip(out, out[1:], strict=False):
        if b["start_s"] < a["end_s"]:
            problems.append(
                f"contract: blocks overlap at {_utc(b['start_s'])} "
                f"({_utc(a['start_s'])}..{_utc(a['end_s'])} and {_utc(b['start_s'])}..)"
            )
            break
    return out, problems


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_blocks(blocks: Any, problems: list[str]) -> list[tuple[int, int, float, float]]:
    if not isinstance(blocks, list):
        problems.append("contract.blocks: expected an array of tables")
        return []
    hours: list[tuple[int, int, float, float]] = []
    for i, b in enumerate(blocks):
        where = f"contract.blocks[{i}]"
        if not isinstance(b, Mapping):
            problems.append(f"{where}: expected a table")
            continue
        unknown = set(b) - _BLOCK_KEYS
        if unknown:
            problems.append(f"{where}.{sorted(unknown)[0]}: unknown key")
        missing = [k for k in sorted(_BLOCK_KEYS) if k not in b]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        fh, th = b["from_hour"], b["to_hour"]
        if not (isinstance(fh, int) and not isinstance(fh, bool) and 0 <= fh <= 23):
            problems.append(f"{where}.from_hour: expected a whole hour 0..23")
            continue
        if not (isinstance(th, int) and not isinstance(th, bool) and fh < th <= 24):
            problems.append(f"{where}.to_hour: expected a whole hour from_hour+1..24")
            continue
        if not _number(b["mw"]) or b["mw"] < 0:
            problems.append(f"{where}.mw: expected a number >= 0")
            continue
        if not _number(b["price_usd_per_mwh"]):
            problems.append(f"{where}.price_usd_per_mwh: expected a number")
            continue
        hours.append((fh, th, float(b["mw"]), float(b["price_usd_per_mwh"])))
    hours.sort()
    for a, b2 in zip(hours, hours[1:], strict=False):
        if b2[0] < a[1]:
            problems.append(f"contract.blocks: hours {a[0]}-{a[1]} and {b2[0]}-{b2[1]} overlap")
    return hours


def _local_ts(day: dt.date, hour: int, tz: dt.tzinfo) -> float:
    """UTC seconds of local ``hour`` (0..24) on ``day``; a skipped hour maps forward."""
    if hour == 24:
        day, hour = day + dt.timedelta(days=1), 0
    local = dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz)
    # Round-trip through UTC so a non-existent local time (spring forward) lands after the gap.
    return local.astimezone(dt.UTC).astimezone(tz).timestamp()


def _daily_blocks(
    hours: list[tuple[int, int, float, float]], first: dt.date, last: dt.date, tz: dt.tzinfo
) -> Iterator[dict[str, float]]:
    day = first
    while day <= last:
        for fh, th, mw, price in hours:
            yield {
                "start_s": _local_ts(day, fh, tz),
                "end_s": _local_ts(day, th, tz),
                "mw": mw,
                "price_usd_per_mwh": price,
            }
        day += dt.timedelta(days=1)


def _fixed_block(b: Any, where: str, problems: list[str]) -> dict[str, float] | None:
    if not isinstance(b, Mapping):
        problems.append(f"{where}: expected a table")
        return None
    unknown = set(b) - _FIXED_KEYS
    missing = [k for k in sorted(_FIXED_KEYS) if k not in b]
    if unknown or missing:
        problems.append(f"{where}: unknown {sorted(unknown)} / missing {missing}")
        return None
    times = []
    for k in ("start", "end"):
        v = b[k]
        if not isinstance(v, dt.datetime) or v.tzinfo is None:
            problems.append(
                f"{where}.{k}: expected a date-time with offset, like 2026-11-26T06:00:00Z"
            )
            return None
        times.append(v.timestamp())
    if times[1] <= times[0]:
        problems.append(f"{where}.end: must be after start")
        return None
    if not _number(b["mw"]) or b["mw"] < 0:
        problems.append(f"{where}.mw: expected a number >= 0")
        return None
    if not _number(b["price_usd_per_mwh"]):
        problems.append(f"{where}.price_usd_per_mwh: expected a number")
        return None
    return {
        "start_s": times[0],
        "end_s": times[1],
        "mw": float(b["mw"]),
        "price_usd_per_mwh": float(b["price_usd_per_mwh"]),
    }


# --- semantic checks ----------------------------------------------------------------------


def _positive(where: str, value: float) -> Iterator[str]:
    if not (math.isfinite(value) and value > 0):
        yield f"{where}: expected a number > 0, got {value}"


def _duplicates(where: str, names: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            yield f"{where}[{i}]: duplicate name {n!r}"
        seen.add(n)


def check_site(site: SiteConfig) -> Iterator[str]:
    """Rules the types cannot express; each problem names its field."""
    if not site.site_id or not re.fullmatch(r"[A-Za-z0-9_.-]+", site.site_id):
        yield f"site_id: expected letters, digits, '.', '_' or '-', got {site.site_id!r}"
    yield from _positive("interconnection_limit_mw", site.interconnection_limit_mw)
    if not 0 <= site.overhead_fraction < 1:
        yield f"overhead_fraction: expected 0 <= x < 1, got {site.overhead_fraction}"
    if site.overhead_fixed_mw < 0:
        yield f"overhead_fixed_mw: expected a number >= 0, got {site.overhead_fixed_mw}"
    for i, m in enumerate(site.asic_models):
        w = f"asic_models[{i}]"
        if m.count < 0:
            yield f"{w}.count: expected a whole number >= 0, got {m.count}"
        yield from _positive(f"{w}.hashrate_ths", m.hashrate_ths)
        yield from _positive(f"{w}.j_per_th", m.j_per_th)
        yield from _positive(f"{w}.ramp_down_s", m.ramp_down_s)
        yield from _positive(f"{w}.ramp_up_s", m.ramp_up_s)
        if "-" in m.model or not m.model:
            yield f"{w}.model: expected a non-empty name without '-' (it is part of miner ids)"
    yield from _duplicates("asic_models", [m.model for m in site.asic_models])
    for i, p in enumerate(site.gpu_pools):
        w = f"gpu_pools[{i}]"
        if p.nodes < 0:
            yield f"{w}.nodes: expected a whole number >= 0, got {p.nodes}"
        if not 1 <= p.gpus_per_node <= 16:
            yield f"{w}.gpus_per_node: expected 1..16, got {p.gpus_per_node}"
        yield from _positive(f"{w}.gpu_power_limit_w", p.gpu_power_limit_w)
        if p.node_overhead_w < 0:
            yield f"{w}.node_overhead_w: expected a number >= 0, got {p.node_overhead_w}"
    yield from _duplicates("gpu_pools", [p.name for p in site.gpu_pools])
    yield from _duplicates("meters", [m.meter_id for m in site.meters])
    if sum(m.role == "poi" for m in site.meters) != 1:
        yield 'meters: expected exactly one meter with role = "poi"'
    if not site.contract:
        yield "contract: no blocks"
    for i, c in enumerate(site.contract):
        if c.end_s <= c.start_s:
            yield f"contract[{i}].end_s: must be after start_s"
        if c.mw < 0:
            yield f"contract[{i}].mw: expected a number >= 0, got {c.mw}"
        elif c.mw > site.interconnection_limit_mw:
            yield (
                f"contract[{i}].mw: {c.mw} MW is above the interconnection limit "
                f"{site.interconnection_limit_mw} MW"
            )


def check_sim(sim: SimSpec, site: SiteConfig) -> Iterator[str]:
    pools = {p.name: p for p in site.gpu_pools}
    used: dict[str, int] = {}
    for i, j in enumerate(sim.jobs):
        w = f"sim.jobs[{i}]"
        if j.pool not in pools:
            yield f"{w}.pool: no GPU pool named {j.pool!r} (pools: {', '.join(pools) or 'none'})"
            continue
        if j.nodes <= 0:
            yield f"{w}.nodes: expected a whole number > 0, got {j.nodes}"
        yield from _positive(f"{w}.checkpoint_every_s", j.checkpoint_every_s)
        used[j.pool] = used.get(j.pool, 0) + j.nodes
        if used[j.pool] > pools[j.pool].nodes:
            has = pools[j.pool].nodes
            yield f"{w}.nodes: jobs use {used[j.pool]} nodes of pool {j.pool!r}, which has {has}"
    yield from _duplicates("sim.jobs", [j.name for j in sim.jobs])
    if sim.nodes_per_rack < 1:
        yield f"sim.nodes_per_rack: expected a whole number >= 1, got {sim.nodes_per_rack}"
    if sim.miners_per_rack < 1:
        yield f"sim.miners_per_rack: expected a whole number >= 1, got {sim.miners_per_rack}"
    for k in ("late_share", "never_share"):
        v = getattr(sim, k)
        if not 0 <= v <= 1:
            yield f"sim.{k}: expected a share 0..1, got {v}"
    if sim.late_share + sim.never_share > 1:
        yield "sim.late_share + sim.never_share: expected at most 1"
    if sim.late_delay_s < 0:
        yield f"sim.late_delay_s: expected a number >= 0, got {sim.late_delay_s}"
