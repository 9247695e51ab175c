"""Replay scenarios: TOML files that tie recordings to a site and a day.

A scenario says which recordings to replay, how to align them in time, and for which site,
so that a settlement day replays exactly and deterministically (same file, same messages,
same order, byte for byte). Format (all keys; ``[[...]]`` tables may repeat)::

    name = "h100-ercot-day"              # label, sent in a ``spillway-replay`` header
    site_id = "demo-site"
    start_utc = "2025-07-01T05:00:00Z"   # replay window, in OUTPUT (event) time, UTC
    end_utc   = "2025-07-02T05:00:00Z"   # exclusive
    data_dir  = "../../../shared/data"   # base of relative file paths (default: the
                                         # scenario's folder; relative to the scenario file)

    [[prices]]                           # -> grid.prices.v1, each sent at its publication
    file = "ercot_rtm_spp_15min/....csv" #    time (streams/replay/prices.py), not its start
    format = "ercot_rtm_spp_15min"       # | ercot_rt_spp_api | ercot_dam_spp_api | ercot_dam_hourly
    settlement_points = ["LZ_WEST"]      # default: every point in the file
    from_utc = "2025-07-01T05:00:00Z"    # recorded instant shown at start_utc (default: start_utc,
                                         # i.e. no shift); every record moves by start - from

    [[hashprice]]                        # -> grid.hashprice.v1, at publication (day end)
    file = "bitcoin_network/coinmetrics_btc_daily_....csv"
    format = "coinmetrics_daily"         # | braiins_insights (then price_file = price-stats)
    from_utc = "2020-03-01T00:00:00Z"

    [[carbon]]                           # -> grid.carbon.v1
    file = "..."; format = "emaps_hourly" # | eia_hourly
    region = "ERCOT"; from_utc = "2023-07-01T05:00:00Z"

    [[fuel_mix]]                         # -> grid.fuelmix.v1
    file = "..."; format = "ercot_fuel_mix_15min"  # | eia_hourly
    region = "ERCOT"; from_utc = "..."

    [[gpus]]                             # -> telemetry.gpu.v1, one frame per node
    trace = "gpu/h100_nvml_trace.csv"
    format = "nvml_csv"                  # | nvidia_smi_csv (then trace_gpus = GPUs per sample
                                         #   if the log has no index column)
    nodes = ["gpu-node-001", "gpu-node-002"]   # or node_count = 4 (+ node_prefix = "gpu-node")
    gpus_per_node = 8
    period_s = 10.0                      # sampling period of the frames
    phase_step_s = 7.3                   # GPU k starts k * phase_step_s into the trace
    scale = 1.0                          # power and energy factor
    loop = true                          # repeat the trace to fill the window

    [[meters]]                           # -> telemetry.meter.v1
    file = "..."; source_id = "meter-gw-1"; from_utc = "..."

    [[grid_events]]                      # -> grid.dispatch.v1 / grid.frequency.v1
    file = "..."; source_id = "pmu-1"; frequency_period_s = 1.0; from_utc = "..."

    [[asics]]                            # -> telemetry.asic.v1, one frame per rack
    scrape = "asic_miner_api/whatsminer_btminer_api_v1"
    kind = "whatsminer"                  # | antminer | avalon | luxos | braiins
    miners = 200; rack_size = 50; period_s = 60.0; prefix = "wm"
    jitter_s = 2.0; missed_share = 0.02; seed = 1   # optional: late stamps, lost polls

GPU traces and ASIC scrapes are patterns: they start at ``start_utc`` whatever day they were
captured. Prices, carbon, fuel mix, meters and grid events are absolute and are shifted by
``start_utc - from_utc``; records outside the window are dropped. ``with_start`` moves the
whole scenario (CLI ``--start``), keeping every relative alignment.

Timestamps are historical: the platform's validator rejects readings older than
``Settings.max_age_s`` (7 days by default). Consumers of a replay must run with a larger
limit, e.g. ``SPILLWAY_MAX_AGE_S=400000000`` (about 12.7 years), or the replay must be
moved near now with ``--start``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from streams.collectors import grid_feeds
from streams.errors import TerminalError
from streams.replay import asic_scrapes, gpu_traces, grid_events, meter_log
from streams.replay.prices import hashprice_records, published_price_records, read_hashprices
from streams.replay.records import Record, window


class ScenarioError(TerminalError, ValueError):
    """A scenario file is invalid; the message names the file and the key."""


def utc_seconds(text: str, where: str) -> float:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {text!r} is not an ISO 8601 time") from exc
    if dt.tzinfo is None:
        raise ScenarioError(f"{where}: {text!r} has no UTC offset (write ...Z)")
    return dt.timestamp()


@dataclass(frozen=True)
class Scenario:
    name: str
    site_id: str
    start_s: float
    end_s: float
    base_dir: Path
    prices: list[dict[str, Any]] = field(default_factory=list)
    hashprice: list[dict[str, Any]] = field(default_factory=list)
    carbon: list[dict[str, Any]] = field(default_factory=list)
    fuel_mix: list[dict[str, Any]] = field(default_factory=list)
    gpus: list[dict[str, Any]] = field(default_factory=list)
    meters: list[dict[str, Any]] = field(default_factory=list)
    grid_events: list[dict[str, Any]] = field(default_factory=list)
    asics: list[dict[str, Any]] = field(default_factory=list)
    source: str = "<memory>"
    moved_s: float = 0.0
    """How far ``with_start`` moved the scenario from its file (added to every shift)."""

    def with_start(self, start_s: float) -> Scenario:
        delta = start_s - self.start_s
        return replace(
            self, start_s=start_s, end_s=self.end_s + delta, moved_s=self.moved_s + delta
        )

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p

    def shift(self, entry: dict[str, Any], where: str) -> float:
        """Seconds to add to recorded times: start - from (plus any move)."""
        original_start = self.start_s - self.moved_s
        frm = entry.get("from_utc")
        base = 0.0 if frm is None else original_start - utc_seconds(str(frm), f"{where}.from_utc")
        return base + self.moved_s


_SECTIONS = ("prices", "hashprice", "carbon", "fuel_mix", "gpus", "meters", "grid_events", "asics")
_TOP = {"name", "site_id", "start_utc", "end_utc", "data_dir", *_SECTIONS}


def load(path: Path | str, data_dir: Path | str | None = None) -> Scenario:
    """Read and check a scenario file (``data_dir`` overrides the file's own)."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario {p}: {exc}") from exc
    unknown = sorted(set(doc) - _TOP)
    if unknown:
        raise ScenarioError(f"{p}: unknown key(s) {unknown}; known: {sorted(_TOP)}")
    for key in ("name", "site_id", "start_utc", "end_utc"):
        if key not in doc:
            raise ScenarioError(f"{p}: missing {key!r}")
    start = utc_seconds(str(doc["start_utc"]), f"{p}: start_utc")
    end = utc_seconds(str(doc["end_utc"]), f"{p}: end_utc")
    if end <= start:
        raise ScenarioError(f"{p}: end_utc is not after start_utc")
    if data_dir is not None:
        base = Path(data_dir)
    else:
        base = p.parent / str(doc.get("data_dir", "."))
    sections: dict[str, list[dict[str, Any]]] = {}
    for s in _SECTIONS:
        entries = doc.get(s, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ScenarioError(f"{p}: {s} must be an array of tables ([[{s}]])")
        sections[s] = entries
    sc = Scenario(
        name=str(doc["name"]),
        site_id=str(doc["site_id"]),
        start_s=start,
        end_s=end,
        base_dir=base.resolve(),
        source=str(p),
        prices=sections["prices"],
        hashprice=sections["hashprice"],
        carbon=sections["carbon"],
        fuel_mix=sections["fuel_mix"],
        gpus=sections["gpus"],
        meters=sections["meters"],
        grid_events=sections["grid_events"],
        asics=sections["asics"],
    )
    sources(sc)  # fail now, on a bad key or file, not half-way through a replay
    return sc


def _req(entry: dict[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise ScenarioError(f"{where}: missing {key!r}")
    return entry[key]


def _file(sc: Scenario, entry: dict[str, Any], key: str, where: str) -> Path:
    f = sc.path(str(_req(entry, key, where)))
    if not f.exists():
        raise ScenarioError(f"{where}: {key} {f} does not exist (data_dir is {sc.base_dir})")
    return f


def _nodes(entry: dict[str, Any], where: str) -> list[str]:
    if "nodes" in entry:
        return [str(n) for n in entry["nodes"]]
    count = int(_req(entry, "node_count", where))
    prefix = str(entry.get("node_prefix", "gpu-node"))
    return [f"{prefix}-{i:03d}" for i in range(1, count + 1)]


def sources(sc: Scenario) -> dict[str, Iterable[Record]]:
    """One lazy record iterator per recording, already windowed and shifted.

    Building them only checks keys and files; the data is read when iterated.
    """
    out: dict[str, Iterable[Record]] = {}
    for i, e in enumerate(sc.prices):
        w = f"{sc.source}: prices[{i}]"
        f = _file(sc, e, "file", w)
        fmt = str(_req(e, "format", w))
        if fmt not in grid_feeds.PRICE_FORMATS:
            raise ScenarioError(
                f"{w}: format {fmt!r} not one of {sorted(grid_feeds.PRICE_FORMATS)}"
            )
        points = e.get("settlement_points")
        out[f"prices[{i}] {f.name}"] = _Windowed(sc, _prices, f, fmt, points, sc.shift(e, w))
    for i, e in enumerate(sc.hashprice):
        w = f"{sc.source}: hashprice[{i}]"
        f, fmt = _file(sc, e, "file", w), str(_req(e, "format", w))
        if fmt not in ("coinmetrics_daily", "braiins_insights"):
            raise ScenarioError(
                f"{w}: format {fmt!r} not one of coinmetrics_daily, braiins_insights"
            )
        pf = _file(sc, e, "price_file", w) if fmt == "braiins_insights" else None
        out[f"hashprice[{i}] {f.name}"] = _Windowed(sc, _hashprice, f, fmt, pf, sc.shift(e, w))
    for i, e in enumerate(sc.carbon):
        w = f"{sc.source}: carbon[{i}]"
        f, fmt = _file(sc, e, "file", w), str(_req(e, "format", w))
        out[f"carbon[{i}] {f.name}"] = _Windowed(
            sc, _carbon, f, fmt, str(e.get("region", "ERCOT")), sc.shift(e, w)
        )
    for i, e in enumerate(sc.fuel_mix):
        w = f"{sc.source}: fuel_mix[{i}]"
        f, fmt = _file(sc, e, "file", w), str(_req(e, "format", w))
        out[f"fuel_mix[{i}] {f.name}"] = _Windowed(
            sc, _fuel_mix, f, fmt, str(e.get("region", "ERCOT")), sc.shift(e, w)
        )
    for i, e in enumerate(sc.meters):
        w = f"{sc.source}: meters[{i}]"
        f = _file(sc, e, "file", w)
        out[f"meters[{i}] {f.name}"] = _Windowed(
            sc,
            meter_log.meter_records,
            f,
            sc.site_id,
            str(e.get("source_id", f.stem)),
            sc.shift(e, w),
        )
    for i, e in enumerate(sc.grid_events):
        w = f"{sc.source}: grid_events[{i}]"
        f = _file(sc, e, "file", w)
        out[f"grid_events[{i}] {f.name}"] = _Windowed(
            sc,
            grid_events.grid_event_records,
            f,
            str(e.get("source_id", "grid-events")),
            sc.shift(e, w),
            float(e.get("frequency_period_s", 1.0)),
        )
    for i, e in enumerate(sc.gpus):
        w = f"{sc.source}: gpus[{i}]"
        f = _file(sc, e, "trace", w)
        fmt = str(e.get("format", "nvml_csv"))
        if fmt not in ("nvml_csv", "nvidia_smi_csv"):
            raise ScenarioError(f"{w}: format {fmt!r} not one of nvml_csv, nvidia_smi_csv")
        try:
            drive = gpu_traces.GpuDrive(
                traces=(),
                nodes=_nodes(e, w),
                gpus_per_node=int(e.get("gpus_per_node", 8)),
                period_s=float(e.get("period_s", 1.0)),
                site_id=sc.site_id,
                phase_step_s=float(e.get("phase_step_s", 0.0)),
                scale=float(e.get("scale", 1.0)),
                loop=bool(e.get("loop", True)),
            )
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"{w}: {exc}") from exc
        if drive.period_s <= 0 or drive.gpus_per_node <= 0 or not drive.nodes:
            raise ScenarioError(f"{w}: period_s, gpus_per_node and nodes must be positive")
        out[f"gpus[{i}] {f.name}"] = _Deferred(_gpus, sc, f, fmt, drive, e.get("trace_gpus"))
    for i, e in enumerate(sc.asics):
        w = f"{sc.source}: asics[{i}]"
        d = _file(sc, e, "scrape", w)
        kind = str(_req(e, "kind", w))
        try:
            poll = _asic_poll(e)
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"{w}: {exc}") from exc
        out[f"asics[{i}] {d.name}"] = _Deferred(_asics, sc, d, kind, e, poll)
    return out


def _prices(f: Path, fmt: str, points: list[str] | None, shift_s: float) -> Iterator[Record]:
    frame = grid_feeds.read_prices(f, fmt, points[0] if points else None)
    return published_price_records(frame, grid_feeds.PRICE_FORMATS[fmt], points, shift_s)


def _hashprice(f: Path, fmt: str, price_file: Path | None, shift_s: float) -> Iterator[Record]:
    return hashprice_records(read_hashprices(f, fmt, price_file), shift_s)


def _carbon(f: Path, fmt: str, region: str, shift_s: float) -> Iterator[Record]:
    return grid_feeds.carbon_records(grid_feeds.read_carbon(f, fmt), region, shift_s)


def _fuel_mix(f: Path, fmt: str, region: str, shift_s: float) -> Iterator[Record]:
    return grid_feeds.fuel_mix_records(grid_feeds.read_fuel_mix(f, fmt), region, shift_s)


def _gpus(
    sc: Scenario, f: Path, fmt: str, drive: gpu_traces.GpuDrive, trace_gpus: Any
) -> Iterator[Record]:
    if fmt == "nvml_csv":
        traces = [gpu_traces.read_nvml_csv(f)]
    else:
        traces = gpu_traces.read_nvidia_smi_csv(f, None if trace_gpus is None else int(trace_gpus))
    return gpu_traces.node_frames(replace(drive, traces=traces), sc.start_s, sc.end_s)


def _asic_poll(e: dict[str, Any]) -> dict[str, Any]:
    """The rack drive's polling keys, checked when the scenario loads (not when it runs)."""
    poll: dict[str, Any] = {
        "miners": int(e.get("miners", 1)),
        "rack_size": int(e.get("rack_size", 50)),
        "period_s": float(e.get("period_s", 60.0)),
        "jitter_s": float(e.get("jitter_s", 0.0)),
        "missed_share": float(e.get("missed_share", 0.0)),
        "seed": int(e.get("seed", 0)),
    }
    asic_scrapes.check_polling(
        poll["miners"], poll["rack_size"], poll["period_s"], poll["jitter_s"], poll["missed_share"]
    )
    return poll


def _asics(
    sc: Scenario, d: Path, kind: str, e: dict[str, Any], poll: dict[str, Any]
) -> Iterator[Record]:
    drive = asic_scrapes.AsicDrive(
        reading=asic_scrapes.scrape_reading(d, kind),
        site_id=sc.site_id,
        prefix=str(e.get("prefix", kind)),
        **poll,
    )
    return asic_scrapes.rack_frames(drive, sc.start_s, sc.end_s)


class _Deferred:
    """An iterable that builds its iterator on first use (files are opened only then)."""

    def __init__(self, make: Callable[..., Iterator[Record]], *args: Any) -> None:
        self._make = make
        self._args = args

    def __iter__(self) -> Iterator[Record]:
        return self._make(*self._args)


class _Windowed(_Deferred):
    """A deferred absolute-time source, cut to the scenario's window."""

    def __init__(self, sc: Scenario, make: Callable[..., Iterator[Record]], *args: Any) -> None:
        super().__init__(make, *args)
        self._sc = sc

    def __iter__(self) -> Iterator[Record]:
        return window(super().__iter__(), self._sc.start_s, self._sc.end_s)
