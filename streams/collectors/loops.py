"""Collector loops: poll on a fixed period, frame, and send through ``TopicProducer``.

``TopicProducer`` already batches, compresses (lz4), is idempotent with acks=all and
applies backpressure; the loops only keep the period and count what they sent.

A poll that raises a transient error (``exc.transient``: a meter not answering, the broker
not acknowledging yet) is reported and the loop goes on, waiting longer after each failure
in a row (``backoff_s``); a terminal error (a bad configuration, a GPU with no power reading)
stops the loop, since every later poll would fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec

from schemas.packed import PackError, pack
from schemas.telemetry import AsicFrame
from streams.collectors.asic_client import poll_fleet
from streams.collectors.asic_parse import MinerReading, to_frame
from streams.collectors.config import Fleet, Meters
from streams.collectors.modbus_meter import scrape
from streams.collectors.nvml import NvmlSampler
from streams.errors import SpillwayError
from streams.replay.runner import Sink
from streams.sim.encode import Encoding

log = logging.getLogger(__name__)
_ENC = msgspec.json.Encoder()
MAX_BACKOFF_S = 60.0
"""Longest wait after transient failures in a row (or the period, if longer)."""


def backoff_s(period_s: float, failures: int) -> float:
    """Wait before the next poll after ``failures`` transient failures in a row (pure):
    the period, doubled per failure up to ``MAX_BACKOFF_S``."""
    if failures <= 0:
        return period_s
    return max(period_s, min(period_s * 2.0**failures, MAX_BACKOFF_S))


def _retryable(exc: SpillwayError, seq: int, failures: int, report: Callable[[str], None]) -> int:
    """Failures in a row after ``exc``; re-raises a terminal error."""
    if not exc.transient:
        raise exc
    report(f"poll {seq} failed ({failures + 1} in a row), tried again: {type(exc).__name__}: {exc}")
    return failures + 1


def rack_frames(
    readings: list[MinerReading], fleet: Fleet, ts_s: float, seq: int, encoding: Encoding = "json"
) -> list[tuple[str, bytes]]:
    """(rack id, encoded AsicFrame) per ``rack_size`` miners, in fleet order (pure)."""
    out = []
    for start in range(0, len(readings), fleet.rack_size):
        rack = f"rack-{start // fleet.rack_size:04d}"
        frame = to_frame(readings[start : start + fleet.rack_size], fleet.site_id, rack, ts_s, seq)
        out.append((rack, encode_frame(frame, encoding)))
    return out


def encode_frame(frame: AsicFrame, encoding: Encoding) -> bytes:
    """The frame packed (``schemas.packed``) or as JSON. A frame the packed encoding cannot
    carry goes as JSON, with a warning: nothing is dropped."""
    if encoding == "packed":
        try:
            return pack(frame)
        except PackError as exc:
            log.warning("frame of %s sent as JSON: %s", frame.source_id, exc)
    return _ENC.encode(frame)


async def _paced(
    scrape_once: Callable[[int], Awaitable[None]],
    producer: Sink,
    period_s: float,
    iterations: int | None,
    report: Callable[[str], None] = log.warning,
) -> int:
    """Call ``scrape_once(seq)`` every ``period_s`` (no drift: the schedule is absolute, a
    slow scrape shortens the next wait), then flush; returns the scrapes done (failed
    transient ones included)."""
    seq = 0
    failures = 0
    next_at = time.monotonic()
    while iterations is None or seq < iterations:
        try:
            await scrape_once(seq)
            failures = 0
        except SpillwayError as exc:
            failures = _retryable(exc, seq, failures, report)
        seq += 1
        next_at += backoff_s(period_s, failures)
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    producer.flush()
    return seq


async def run_asic(
    fleet: Fleet,
    producer: Sink,
    period_s: float,
    timeout_s: float,
    concurrency: int,
    iterations: int | None = None,
    report: Callable[[str], None] = log.info,
    encoding: Encoding = "json",
) -> int:
    async def once(seq: int) -> None:
        ts = time.time()
        readings = await poll_fleet(fleet.miners, timeout_s, concurrency)
        for rack, value in rack_frames(readings, fleet, ts, seq, encoding):
            producer.send("telemetry.asic.v1", value, rack.encode())
        bad = sum(r.state in ("offline", "unknown") for r in readings)
        report(f"scrape {seq}: {len(readings)} miners, {bad} offline/unknown")

    return await _paced(once, producer, period_s, iterations, report)


async def run_meters(
    cfg: Meters,
    producer: Sink,
    period_s: float,
    timeout_s: float,
    iterations: int | None = None,
    report: Callable[[str], None] = log.info,
) -> int:
    async def once(seq: int) -> None:
        frame, errors = await scrape(
            cfg.meters, cfg.site_id, cfg.source_id, time.time(), seq, timeout_s
        )
        if frame is not None:
            producer.send("telemetry.meter.v1", _ENC.encode(frame), cfg.source_id.encode())
        for meter, why in errors.items():
            report(f"meter {meter}: {why}")

    return await _paced(once, producer, period_s, iterations, report)


def run_nvml(
    sampler: NvmlSampler,
    producer: Sink,
    period_s: float,
    iterations: int | None = None,
    report: Callable[[str], None] = log.warning,
) -> int:
    seq = 0
    failures = 0
    next_at = time.monotonic()
    while iterations is None or seq < iterations:
        try:
            frame = sampler.frame(sampler.read(), time.time(), seq)
            producer.send("telemetry.gpu.v1", _ENC.encode(frame), sampler.node_id.encode())
            failures = 0
        except SpillwayError as exc:
            failures = _retryable(exc, seq, failures, report)
        seq += 1
        next_at += backoff_s(period_s, failures)
        time.sleep(max(0.0, next_at - time.monotonic()))
    producer.flush()
    return seq
