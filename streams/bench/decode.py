"""Benchmark: what decoding the telemetry costs, one core, no Kafka or faust.

``python -m streams.bench.decode [--scale 1.0] [--seconds 5]``

The simulator's frames of the reference site (the bytes the agents read) are decoded, per
site-second, four ways: the contract as stage 1 runs it (``Contract.decode``: the bounded
fast path, then the checks msgspec cannot express), the plain message type with no bounds,
msgspec with no type at all (dicts and lists), and a type with only the version field (the
JSON is scanned and skipped, no values built). The differences say where the time goes:
building the values, not parsing or checking them. Best of three, worker gc thresholds.

A fifth way reads each topic's frames of the site-second in one call of polars' NDJSON
reader, with the contract's field types as its schema, into Arrow columns: no Python value
per number, and no checks either (bounds, equal lengths, nulls), so it is a lower bound for
a columnar decode. One polars thread: set ``POLARS_MAX_THREADS=1`` for that, as a worker has one
core (``polars_threads`` in the result says how many it used).
"""

from __future__ import annotations

import io
import math
import time
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec
import polars as pl

from schemas.registry import CONTRACTS
from schemas.validation import Limits
from streams.bench.stage1 import reference_args, reference_frames
from streams.gc_tuning import throughput_gc


class _VersionOnly(msgspec.Struct):
    v: int


def _polars_type(t: Any) -> pl.DataType:
    """The polars type of a contract field (``X | None`` is nullable ``X``)."""
    args = [a for a in typing.get_args(t) if a is not type(None)]
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        return _polars_type(args[0])
    if origin is list:
        return pl.List(_polars_type(args[0]))
    if origin is typing.Literal or t is str:
        return pl.Utf8()
    if t is float:
        return pl.Float64()
    if t is int:
        return pl.Int64()
    raise TypeError(f"no polars type for {t!r}")


def polars_schema(kind: type[msgspec.Struct]) -> dict[str, pl.DataType]:
    hints = typing.get_type_hints(kind)
    return {name: _polars_type(hints[name]) for name in kind.__struct_fields__}


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def decode_costs(scale: float, seconds: int) -> dict[str, Any]:
    """Milliseconds per site-second for each way of decoding the same frames."""
    _site, msgs, readings = reference_frames(scale, seconds)
    by_topic: dict[str, list[bytes]] = {}
    for topic, _key, value in msgs:
        by_topic.setdefault(topic, []).append(value)
    limits = Limits(now_s=time.time())
    contracts = {t: CONTRACTS[t] for t in by_topic}
    plain = {t: msgspec.json.Decoder(c.type) for t, c in contracts.items()}
    untyped = msgspec.json.Decoder()
    skip = msgspec.json.Decoder(_VersionOnly)

    def contract() -> None:
        for t, frames in by_topic.items():
            decode = contracts[t].decode
            for raw in frames:
                assert isinstance(decode(raw, limits), msgspec.Struct)

    def each(decoders: Callable[[str], Callable[[bytes], object]]) -> Callable[[], None]:
        # Every way drops each frame as soon as it is decoded, as stage 1 does.
        def run() -> None:
            for t, frames in by_topic.items():
                decode = decoders(t)
                for raw in frames:
                    decode(raw)

        return run

    schemas = {t: polars_schema(c.type) for t, c in contracts.items()}

    def polars_ndjson() -> None:
        for t, frames in by_topic.items():
            for sec in range(seconds):  # one call per topic and site-second, as a batch is
                part = frames[sec * len(frames) // seconds : (sec + 1) * len(frames) // seconds]
                df = pl.read_ndjson(io.BytesIO(b"\n".join(part)), schema=schemas[t])
                assert df.height == len(part)

    ways: dict[str, Callable[[], None]] = {
        "contract": contract,
        "plain_type": each(lambda t: plain[t].decode),
        "untyped": each(lambda _t: untyped.decode),
        "skip_values": each(lambda _t: skip.decode),
        "polars_ndjson": polars_ndjson,
    }
    with throughput_gc():
        ms = {k: 1000 * _best_of(3, fn) / seconds for k, fn in ways.items()}
    return {
        "frames_per_site_second": len(msgs) / seconds,
        "readings_per_site_second": readings / seconds,
        "json_mb_per_site_second": sum(len(m[2]) for m in msgs) / seconds / 1e6,
        "ms_per_site_second": {k: round(v, 1) for k, v in ms.items()},
        "polars_threads": pl.thread_pool_size(),
    }


def main() -> None:
    args = reference_args("python -m streams.bench.decode", __doc__, seconds=5)
    r = decode_costs(args.scale, args.seconds)
    print(
        f"{r['readings_per_site_second']:,.0f} readings in {r['frames_per_site_second']:,.0f} "
        f"frames ({r['json_mb_per_site_second']:.1f} MB of JSON) per site-second:"
    )
    for way, ms in r["ms_per_site_second"].items():
        print(f"  {way:13s} {ms:7.1f} ms per site-second")
    print(f"  (polars_ndjson on {r['polars_threads']} polars thread(s))")


if __name__ == "__main__":
    main()
