"""Market prices and hashprice replayed as they were published: each record is stamped, and
so sent, at its publication time, never at its interval's start.

A replay sent the 15-minute settlement point price at the start of its interval, so the
controller acted on a price that ERCOT posts only after the interval ends. Here every
``PriceSignal`` carries ``published_s`` (``streams.decisions.publication``: SCED interval end
+ 5 min, 15-minute SPP interval end + 5 min) and its record's time is that, so pacing sends
it then. Hashprice from daily network data is published at the end of its day.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec
import polars as pl

from schemas.grid import HashpriceSignal, PriceSignal
from streams.collectors.grid_feeds import FeedError, PriceKind
from streams.decisions.economics import daily_hashprices
from streams.decisions.publication import published_at
from streams.replay.records import Record
from transforms import sources

_ENC = msgspec.json.Encoder()
HASHPRICE_TOPIC = "grid.hashprice.v1"


def published_price_records(
    frame: pl.DataFrame,
    kind: PriceKind,
    points: Iterable[str] | None = None,
    shift_s: float = 0.0,
    market: str = "ERCOT",
) -> Iterator[Record]:
    """One PriceSignal per (interval, point) of ``frame`` (``grid_feeds.read_prices``'s
    shape), keyed by settlement point, stamped with and ordered by its publication time."""
    if points is not None:
        wanted = list(points)
        have = set(frame["settlement_point"].unique().to_list())
        missing = [p for p in wanted if p not in have]
        if missing:
            raise FeedError(
                f"settlement point(s) {missing} not in the file; it has {sorted(have)[:20]}"
            )
        frame = frame.filter(pl.col("settlement_point").is_in(wanted))
    out: list[tuple[float, float, str, PriceSignal]] = []
    for start, end, point, price in frame.iter_rows():
        msg = PriceSignal(
            market=market,
            settlement_point=point,
            kind=kind,
            interval_start_s=float(start) + shift_s,
            interval_end_s=float(end) + shift_s,
            price_usd_per_mwh=float(price),
        )
        msg = msgspec.structs.replace(msg, published_s=published_at(msg))
        out.append((msg.published_s or 0.0, msg.interval_start_s, point, msg))
    # Publication order; a DST day's or a feed's odd row order must not reorder the replay.
    out.sort(key=lambda r: (r[0], r[1], r[2]))
    for published, _, point, msg in out:
        yield Record(published, "grid.prices.v1", point.encode(), _ENC.encode(msg))


def hashprice_records(signals: Iterable[HashpriceSignal], shift_s: float = 0.0) -> Iterator[
    Record
]:
    """Hashprice signals, moved by ``shift_s``, each sent at its publication time."""
    moved = [
        msgspec.structs.replace(s, ts_s=s.ts_s + shift_s, published_s=s.published_s + shift_s)
        for s in signals
    ]
    moved.sort(key=lambda s: s.published_s)
    for s in moved:
        yield Record(s.published_s, HASHPRICE_TOPIC, b"network", _ENC.encode(s))


def read_hashprices(path: Path, fmt: str, price_path: Path | None = None) -> list[
    HashpriceSignal
]:
    """Hashprice signals from a network-data file.

    ``coinmetrics_daily``: one per day from difficulty, issuance, fees and price (published
    at the day's end). ``braiins_insights``: the snapshot's own hashprice, published at its
    capture time (``price_path``: the price-stats file beside the hashrate-stats one).
    """
    if fmt == "coinmetrics_daily":
        return daily_hashprices(sources.read_coinmetrics_btc_daily(path).iter_rows(named=True))
    if fmt == "braiins_insights":
        if price_path is None:
            raise FeedError(f"{path}: braiins_insights needs price_file (price-stats JSON)")
        row = sources.read_braiins_insights(path, price_path).row(0, named=True)
        captured = float(row["captured_at_utc"].timestamp())
        return [
            HashpriceSignal(
                source="braiins-insights",
                ts_s=captured,
                published_s=captured,
                usd_per_ph_day=float(row["hashprice_usd_per_ph_day"]),
                fees_btc_per_block=float(row["avg_fees_per_block_btc"]),
                btc_price_usd=float(row["price_usd_per_btc"]),
            )
        ]
    raise FeedError(f"{path}: unknown hashprice format {fmt!r}; known: coinmetrics_daily, "
                    "braiins_insights")
