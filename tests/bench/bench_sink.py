"""Throughput of the mart sink's write path (not collected by pytest).

    .venv/bin/python -m tests.bench.bench_sink [--seconds-of-data 60] [--nodes 1000]

Measures, on a file database like the sink's: rows/s of ``write_batch`` (one transaction,
bulk INSERT ... SELECT, rows + offsets) for site-power batches and for telemetry-rollup
batches, and readings/s for the whole decode -> frames -> write path.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from schemas.registry import contract_for
from schemas.validation import Limits
from streams.marts.frames import accept_frames, build_frames
from streams.marts.store import Batch, open_store, write_batch
from tests.marts.helpers import gpu_frame, site_second

ENC = msgspec.json.Encoder()


def _run(db: Path, topic: str, raws: list[bytes], batch: int) -> dict[str, float]:
    con = open_store(db)
    contract = contract_for(topic)
    limits = Limits(now_s=time.time(), max_age_s=1e12)
    decode_s = build_s = write_s = 0.0
    rows = readings = 0
    marks: dict[tuple[str, str], tuple[float, int]] = {}
    for lo in range(0, len(raws), batch):
        t0 = time.perf_counter()
        items: list[tuple[str, Any]] = [(topic, contract.decode(r, limits))
                                        for r in raws[lo:lo + batch]]
        t1 = time.perf_counter()
        acc = accept_frames(items, marks)
        marks.update(acc.marks)
        frames = build_frames(acc.items)
        t2 = time.perf_counter()
        write_batch(con, Batch(frames=frames, offsets={(topic, 0): lo + batch},
                               marks=acc.marks, frames_seen=acc.frames, stale=acc.stale))
        t3 = time.perf_counter()
        decode_s, build_s, write_s = decode_s + t1 - t0, build_s + t2 - t1, write_s + t3 - t2
        rows += sum(f.height for f in frames.values())
        readings += sum(len(getattr(m, "power_w", [0])) if not isinstance(
            getattr(m, "power_w", None), float) else 1 for _, m in items)
    con.close()
    total = decode_s + build_s + write_s
    return {"messages": len(raws), "readings": readings, "rows": rows,
            "write_rows_per_s": rows / write_s, "readings_per_s": readings / total,
            "decode_s": decode_s, "build_s": build_s, "write_s": write_s}


def _kafka(nodes: int, seconds: int) -> None:
    """The whole sink through the real broker (KAFKA_BOOTSTRAP_SERVERS or the local one)."""
    import threading
    import uuid

    from infra.provision import provision
    from streams.io.kafka import TopicProducer
    from streams.marts.sink import run_sink
    from streams.settings import load_settings

    settings = load_settings(topic_namespace=f"bench{uuid.uuid4().hex[:8]}")
    provision(settings)
    producer = TopicProducer(settings)
    start = int(time.time()) - 3600
    readings = 0
    for i in range(seconds):
        producer.send("site.power.v1", ENC.encode(site_second("s", start + i)), key=b"s")
        for n in range(nodes):
            f = gpu_frame("s", f"node-{n}", i, start + i + 0.25, gpus=8)
            producer.send("telemetry.gpu.v1", ENC.encode(f), key=f.source_id.encode())
            readings += 8
    producer.flush()
    with tempfile.TemporaryDirectory() as tmp:
        stats = run_sink(settings, threading.Event(), db_path=Path(tmp) / "sink.duckdb",
                         group_id=f"bench-{uuid.uuid4().hex[:8]}", once=True, idle_s=2.0,
                         publisher=None)
    print(f"kafka -> duckdb: {stats.messages} messages ({readings} GPU readings) in "
          f"{stats.busy_s:.2f} s busy ({stats.write_s:.2f} s in DuckDB): "
          f"{stats.messages / stats.busy_s:,.0f} msg/s, {readings / stats.busy_s:,.0f} "
          f"readings/s, {sum(stats.rows.values()) / stats.write_s:,.0f} rows/s written")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds-of-data", type=int, default=60)
    ap.add_argument("--nodes", type=int, default=1000, help="GPU nodes (8 GPUs each)")
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--batch", type=int, default=20_000, help="messages per batch")
    ap.add_argument("--kafka", action="store_true", help="also run the sink through Kafka")
    args = ap.parse_args()
    if args.kafka:
        _kafka(args.nodes, args.seconds_of_data)
    start = int(time.time()) - 3600
    sp = [ENC.encode(site_second(f"site-{k}", start + i))
          for i in range(args.seconds_of_data * 20) for k in range(args.sites)]
    gpu = [ENC.encode(gpu_frame("s", f"node-{n}", i, start + i + 0.25, gpus=8))
           for i in range(args.seconds_of_data) for n in range(args.nodes)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, topic, raws, batch in [
            ("site power", "site.power.v1", sp, args.batch),
            ("gpu telemetry (rollups)", "telemetry.gpu.v1", gpu, max(args.batch // 4, 1)),
        ]:
            r = _run(Path(tmp) / f"{topic}.duckdb", topic, raws, batch)
            print(f"{name}: {r['messages']} messages, {r['readings']} readings -> "
                  f"{r['rows']} rows in {r['write_s']:.2f} s of writes: "
                  f"{r['write_rows_per_s']:,.0f} rows/s into DuckDB; end to end "
                  f"(decode {r['decode_s']:.2f} s + frames {r['build_s']:.2f} s + write) "
                  f"{r['readings_per_s']:,.0f} readings/s")


if __name__ == "__main__":
    main()
