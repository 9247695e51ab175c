"""``spillway collect asic|meters|nvml|grid``: real device and grid collectors into Kafka."""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections import Counter
from collections.abc import Iterable

from streams.collectors import config, grid_feeds, loops
from streams.collectors.nvml import NvmlSampler, load_nvml
from streams.commands import Subparsers, add_parser, say
from streams.io.kafka import TopicProducer
from streams.replay.files import detect
from streams.replay.records import Record, merge
from streams.settings import get_settings
from streams.sim.encode import ENCODINGS


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "collect", "poll miners, meters, GPUs or grid files into the topics")
    kinds = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)

    asic = add_parser(
        kinds, "asic", "poll a miner fleet (cgminer API, Whatsminer, Braiins OS REST)"
    )
    asic.add_argument("fleet", help="fleet TOML (streams/collectors/config.py)")
    asic.add_argument("--period", type=float, default=5.0, help="seconds between scrapes")
    asic.add_argument("--timeout", type=float, default=5.0, help="per-miner timeout, s")
    asic.add_argument("--concurrency", type=int, default=512, help="miners polled at once")
    asic.add_argument("--once", action="store_true", help="one scrape, then exit")
    asic.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default="json",
        help="frame encoding (json); packed: binary columns, for racks of many miners",
    )
    asic.set_defaults(func=_asic)

    meters = add_parser(kinds, "meters", "read power meters over Modbus TCP")
    meters.add_argument("config", help="meters TOML (streams/collectors/config.py)")
    meters.add_argument("--period", type=float, default=1.0)
    meters.add_argument("--timeout", type=float, default=3.0)
    meters.add_argument("--once", action="store_true")
    meters.set_defaults(func=_meters)

    nvml = add_parser(kinds, "nvml", "read this node's GPUs through NVML")
    nvml.add_argument("--node-id", default=socket.gethostname())
    nvml.add_argument("--site-id", default="site")
    nvml.add_argument("--period", type=float, default=1.0)
    nvml.add_argument("--once", action="store_true")
    nvml.set_defaults(func=_nvml)

    grid = add_parser(kinds, "grid", "publish ERCOT public report files (prices, fuel mix)")
    grid.add_argument("files", nargs="+")
    grid.add_argument("--point", action="append", dest="points", help="settlement point to keep")
    grid.set_defaults(func=_grid)


def _asic(args: argparse.Namespace) -> int:
    fleet = config.load_fleet(args.fleet)
    producer = TopicProducer(get_settings())
    asyncio.run(
        loops.run_asic(
            fleet,
            producer,
            args.period,
            args.timeout,
            args.concurrency,
            1 if args.once else None,
            say,
            args.encoding,
        )
    )
    return 0


def _meters(args: argparse.Namespace) -> int:
    cfg = config.load_meters(args.config)
    producer = TopicProducer(get_settings())
    asyncio.run(
        loops.run_meters(cfg, producer, args.period, args.timeout, 1 if args.once else None, say)
    )
    return 0


def _nvml(args: argparse.Namespace) -> int:
    nvml = load_nvml()
    try:
        sampler = NvmlSampler(nvml, args.node_id, args.site_id)
        loops.run_nvml(
            sampler, TopicProducer(get_settings()), args.period, 1 if args.once else None
        )
    finally:
        nvml.nvmlShutdown()
    return 0


def _grid(args: argparse.Namespace) -> int:
    sources: dict[str, Iterable[Record]] = {}
    for f in args.files:
        fmt = detect(f)
        if fmt in grid_feeds.PRICE_FORMATS:
            frame = grid_feeds.read_prices(f, fmt, args.points[0] if args.points else None)
            sources[f] = grid_feeds.price_records(frame, grid_feeds.PRICE_FORMATS[fmt], args.points)
        elif fmt in ("ercot_fuel_mix_15min",):
            sources[f] = grid_feeds.fuel_mix_records(grid_feeds.read_fuel_mix(f, fmt))
        else:
            raise ValueError(f"{f}: format {fmt} is not a grid price or fuel-mix report")
    producer = TopicProducer(get_settings())
    counts: Counter[str] = Counter()
    for rec in merge(sources):
        producer.send(rec.topic, rec.value, rec.key)
        counts[rec.topic] += 1
    producer.flush()
    for topic, n in sorted(counts.items()):
        print(f"{topic:22s} {n:>8,d}")
    return 0
