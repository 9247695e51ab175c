"""``spillway replay FILE...``: recordings replayed at their own recorded times.

The format of each file is recognised from its header (``detect``); a folder is a recorded
miner scrape. Without a scenario nothing is shifted, GPU traces play once as one node, and
a miner scrape is one frame at the ``When`` of its summary reply.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from streams.collectors import grid_feeds
from streams.collectors.asic_parse import COMMANDS, parse, to_frame
from streams.errors import TerminalError
from streams.replay import asic_scrapes, gpu_traces, grid_events, meter_log
from streams.replay.prices import published_price_records
from streams.replay.records import Record

FORMATS = (
    "nvml_csv",
    "nvidia_smi_csv",
    "ercot_rtm_spp_15min",
    "ercot_rt_spp_api",
    "ercot_dam_spp_api",
    "ercot_dam_hourly",
    "emaps_hourly",
    "eia_hourly",
    "ercot_fuel_mix_15min",
    "ercot_lz_rt_wide",
    "ercot_lz_dam_wide",
    "gridstatus_dam_spp",
    "mpcbess_dam_hourly",
    "ercot_sced_lmp",
    "hub_rtm_dam_15min",
    "as_mcpc",
    "meter_csv",
    "grid_events_csv",
    "asic_scrape",
)


class UnknownFormat(TerminalError, ValueError):
    """The file's header matches none of the known recordings."""


def detect_header(header: list[str]) -> str:
    """Format name from the first line's fields (pure, for table tests)."""
    h = [c.strip() for c in header]
    names = {c.split(" [")[0] for c in h}
    rules: list[tuple[str, set[str]]] = [
        ("nvml_csv", {"ts", "power_mw", "energy_mj"}),
        ("nvidia_smi_csv", {"timestamp", "power.draw"}),
        ("meter_csv", {"timestamp", "meter_id", "power_w", "energy_wh"}),
        ("grid_events_csv", {"kind", "event_id", "start"}),
        ("ercot_rt_spp_api", {"DeliveryDate", "DeliveryInterval", "SettlementPointName"}),
        ("ercot_dam_spp_api", {"DeliveryDate", "HourEnding", "SettlementPoint"}),
        ("ercot_dam_hourly", {"Datetime", "Price (USD/MWh)"}),
        ("emaps_hourly", {"Datetime (UTC)", "Zone Id"}),
        ("eia_hourly", {"timestamp", "NG", "avg_CI"}),
        ("ercot_fuel_mix_15min", {"Date", "Fuel", "Total"}),
        ("ercot_lz_rt_wide", {"interval_start_ct"}),
        ("ercot_lz_dam_wide", {"hour_start_ct"}),
        ("gridstatus_dam_spp", {"interval_start_utc", "location", "price"}),
        ("gridstatus_dam_spp", {"Interval Start", "Location", "SPP"}),
        ("ercot_sced_lmp", {"SCEDTimestamp", "SettlementPoint", "LMP"}),
        ("as_mcpc", {"interval_start_utc", "product", "price"}),
        ("as_mcpc", {"Interval Start", "REGUP", "RRS"}),
        ("as_mcpc", {"AncillaryType", "MCPC"}),
        ("as_mcpc", {"ASType", "MCPC"}),
        ("mpcbess_dam_hourly", {"key", "HB_NORTH_DAM"}),
    ]
    for name, need in rules:
        if need <= names:
            return name
    if h and h[0] == "Time" and len(h) > 1:
        return "ercot_rtm_spp_15min"
    if h and h[0] == "" and any(c.endswith("_RTM") for c in h):
        return "hub_rtm_dam_15min"
    raise UnknownFormat(f"header {h[:6]} matches no known recording; known: {', '.join(FORMATS)}")


def detect(path: Path | str) -> str:
    p = Path(path)
    if p.is_dir():
        return "asic_scrape"
    with p.open(newline="", encoding="utf-8") as fh:
        first = fh.readline()
    sep = "\t" if "\t" in first else ","
    try:
        return detect_header(next(csv.reader([first], delimiter=sep)))
    except UnknownFormat as exc:
        raise UnknownFormat(f"{p}: {exc}") from None


def scrape_kind(folder: Path) -> str:
    """Firmware family of a recorded scrape folder, from which replies it holds."""
    have = {f.stem for f in folder.glob("*.json")}
    if "miner_stats" in have:
        return "braiins"
    if "power" in have:
        return "luxos"
    if "get_psu" in have or "status" in have:
        return "whatsminer"
    if "litestats" in have:
        return "avalon"
    if {"summary", "stats"} <= have:
        return "antminer"
    raise UnknownFormat(f"{folder}: a folder of miner replies needs summary/stats or miner_stats")


def file_sources(
    paths: Iterable[Path | str],
    site_id: str,
    settlement_points: list[str] | None = None,
    trace_gpus: int | None = None,
) -> dict[str, Iterable[Record]]:
    out: dict[str, Iterable[Record]] = {}
    for raw in paths:
        p = Path(raw)
        fmt = detect(p)
        out[f"{p.name} ({fmt})"] = (
            list(_records(p, fmt, site_id, settlement_points, trace_gpus))
            if fmt == "asic_scrape"
            else _Lazy(p, fmt, site_id, settlement_points, trace_gpus)
        )
    return out


class _Lazy:
    def __init__(
        self, p: Path, fmt: str, site: str, points: list[str] | None, tg: int | None
    ) -> None:
        self.args = (p, fmt, site, points, tg)

    def __iter__(self) -> Iterator[Record]:
        return _records(*self.args)


def _records(
    p: Path, fmt: str, site_id: str, points: list[str] | None, trace_gpus: int | None
) -> Iterator[Record]:
    if fmt == "nvml_csv":
        return gpu_traces.recorded_frames(gpu_traces.read_nvml_csv(p), p.stem, site_id)
    if fmt == "nvidia_smi_csv":
        traces = gpu_traces.read_nvidia_smi_csv(p, trace_gpus)
        drive = gpu_traces.GpuDrive(
            traces, [p.stem], len(traces), traces[0].step_s, site_id, loop=False
        )
        return gpu_traces.node_frames(drive, traces[0].t0_s, traces[0].t0_s + traces[0].duration_s)
    if fmt in grid_feeds.PRICE_FORMATS:
        frame = grid_feeds.read_prices(p, fmt, points[0] if points else None)
        return published_price_records(frame, grid_feeds.PRICE_FORMATS[fmt], points)
    if fmt == "hub_rtm_dam_15min":
        import heapq

        rt, da = grid_feeds.read_hub_prices(p)
        return heapq.merge(
            published_price_records(rt, "rt", points),
            published_price_records(da, "da", points),
            key=lambda r: r.ts_s,
        )
    if fmt == "as_mcpc":
        raise UnknownFormat(
            f"{p}: ancillary-service clearing prices have no topic contract yet; "
            "streams.collectors.grid_feeds.read_as_mcpc parses them"
        )
    if fmt == "emaps_hourly":
        return grid_feeds.carbon_records(grid_feeds.read_carbon(p, fmt))
    if fmt == "eia_hourly":
        # The EIA-derived file carries both the mix and its average intensity.
        import heapq

        return heapq.merge(
            grid_feeds.carbon_records(grid_feeds.read_carbon(p, fmt)),
            grid_feeds.fuel_mix_records(grid_feeds.read_fuel_mix(p, fmt)),
            key=lambda r: r.ts_s,
        )
    if fmt == "ercot_fuel_mix_15min":
        return grid_feeds.fuel_mix_records(grid_feeds.read_fuel_mix(p, fmt))
    if fmt == "meter_csv":
        return meter_log.meter_records(p, site_id, p.stem)
    if fmt == "grid_events_csv":
        return grid_events.grid_event_records(p)
    if fmt == "asic_scrape":
        kind = scrape_kind(p)
        replies = asic_scrapes.read_scrape_dir(p, kind)
        reading = parse(kind, p.name, replies)
        status = replies[COMMANDS[kind][0]].get("STATUS")
        when = status[0].get("When") if isinstance(status, list) and status else None
        if when is None:
            raise UnknownFormat(f"{p}: the scrape has no STATUS.When time; replay it in a scenario")
        asic = to_frame([reading], site_id, p.name, float(when), 0)
        return iter(
            [Record(float(when), "telemetry.asic.v1", p.name.encode(), msgspec.json.encode(asic))]
        )
    raise UnknownFormat(f"{p}: no reader for format {fmt}")
