"""Inputs built directly from the schemas, a worker in a subprocess, and output collection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer

from infra.admin import Group, admin_session, describe_group, wait_for_group
from schemas.packed import pack
from schemas.site import SiteConfig
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame
from streams.decisions.fleet import fleet_roster, gpu_node_id
from streams.io.kafka import TopicProducer, make_consumer
from streams.settings import Settings
from streams.site_file import load_site

REPO = Path(__file__).resolve().parents[2]
SMALL = REPO / "infra" / "sites" / "small.toml"
_enc = msgspec.json.Encoder()


def small_site() -> SiteConfig:
    return load_site(SMALL)


@dataclass(frozen=True)
class Second:
    """What the small site draws in one second (GPU W per GPU, miners awake per model)."""

    ts_s: float
    gpu_w: float = 500.0
    awake: dict[str, int] | None = None
    """Model -> miners hashing (the first ``count - awake`` ids sleep); None: all."""
    stock_power: bool = False
    """Miners report their wall power (otherwise None, estimated from hashrate)."""


Outgoing = tuple[str, bytes, bytes, int]
"""(base topic, key, value, readings)"""


def frames(
    site: SiteConfig,
    sec: Second,
    seq: int,
    *,
    nodes_per_rack: int = 4,
    miners_per_rack: int = 50,
    encoding: str = "json",
) -> list[Outgoing]:
    """One second of telemetry of ``site``: GPU racks, ASIC racks, one meter frame, as JSON
    or packed (``schemas.packed``)."""
    encode = pack if encoding == "packed" else _enc.encode
    out: list[Outgoing] = []
    ai_w = 0.0
    for pool in site.gpu_pools:
        for r0 in range(0, pool.nodes, nodes_per_rack):
            nodes = [
                gpu_node_id(site.site_id, pool.name, i)
                for i in range(r0, min(pool.nodes, r0 + nodes_per_rack))
            ]
            ids = [n for n in nodes for _ in range(pool.gpus_per_node)]
            power = [sec.gpu_w] * len(ids)
            ai_w += sum(power) + len(nodes) * pool.node_overhead_w
            src = f"{pool.name}-rack-{r0 // nodes_per_rack:03d}"
            f = GpuFrame(
                site_id=site.site_id,
                source_id=src,
                ts_s=sec.ts_s,
                seq=seq,
                node_id=ids,
                gpu_index=list(range(pool.gpus_per_node)) * len(nodes),
                power_w=power,
                energy_mj=[None] * len(ids),
            )
            out.append(("telemetry.gpu.v1", src.encode(), encode(f), len(ids)))
    mining_w = 0.0
    for m in fleet_roster(site).models:
        n = len(m.miner_ids)
        awake = n if sec.awake is None else sec.awake.get(m.model, n)
        asleep = n - awake
        for r0 in range(0, n, miners_per_rack):
            ids = m.miner_ids[r0 : r0 + miners_per_rack]
            hashing = [i >= asleep for i in range(r0, r0 + len(ids))]
            hr = [m.hashrate_ths if h else 0.0 for h in hashing]
            pw = [(m.power_w if h else 0.0) for h in hashing]
            mining_w += sum(pw)
            src = f"{m.model}-rack-{r0 // miners_per_rack:03d}"
            fa = AsicFrame(
                site_id=site.site_id,
                source_id=src,
                ts_s=sec.ts_s,
                seq=seq,
                miner_id=ids,
                model=[m.model] * len(ids),
                hashrate_ths=hr,
                power_w=list(pw) if sec.stock_power else [None] * len(ids),
                temp_c=[70.0] * len(ids),
                fan_rpm=[4000] * len(ids),
                state=["hashing" if h else "sleeping" for h in hashing],
            )
            out.append(("telemetry.asic.v1", src.encode(), encode(fa), len(ids)))
    overhead = site.overhead_fixed_mw * 1e6 + site.overhead_fraction * (ai_w + mining_w)
    meters = {"POI-1": ai_w + mining_w + overhead, "AI-MAIN": ai_w, "MINING-MAIN": mining_w}
    mf = MeterFrame(
        site_id=site.site_id,
        source_id="modbus-gw",
        ts_s=sec.ts_s,
        seq=seq,
        meter_id=list(meters),
        power_w=list(meters.values()),
        energy_wh=[None] * len(meters),
    )
    out.append(("telemetry.meter.v1", b"modbus-gw", encode(mf), len(meters)))
    return out


def produce(settings: Settings, messages: list[tuple[str, bytes, bytes]]) -> None:
    p = TopicProducer(settings)
    for topic, key, value in messages:
        p.send(topic, value, key=key)
    p.flush(30)


class Collector:
    """Reads output topics from the start, decoding each with its contract type."""

    def __init__(self, settings: Settings, types: dict[str, type[Any]]) -> None:
        self.settings = settings
        self.consumer: Consumer = make_consumer(settings, f"test-collect-{uuid.uuid4().hex[:8]}")
        names = TopicProducer(settings)
        self.by_topic = {names.topic(b): b for b in types}
        self.decoders = {b: msgspec.json.Decoder(t) for b, t in types.items()}
        self.got: dict[str, list[Any]] = {b: [] for b in types}
        self.consumer.subscribe(list(self.by_topic))

    def poll(self, timeout_s: float = 0.5) -> int:
        n = 0
        for m in self.consumer.consume(1000, timeout=timeout_s):
            if m.error() is not None:
                continue
            base = self.by_topic[m.topic() or ""]
            self.got[base].append(self.decoders[base].decode(m.value() or b""))
            n += 1
        return n

    def until(
        self, done: Callable[[dict[str, list[Any]]], bool], timeout_s: float, what: str
    ) -> dict[str, list[Any]]:
        deadline = time.monotonic() + timeout_s
        while not done(self.got):
            if time.monotonic() > deadline:
                counts = {k: len(v) for k, v in self.got.items()}
                raise AssertionError(
                    f"timed out after {timeout_s:.0f} s waiting for {what}: got {counts}"
                )
            self.poll()
        return self.got

    def settle(self, quiet_s: float = 2.0) -> dict[str, list[Any]]:
        """Poll until nothing new arrives for ``quiet_s``."""
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            if self.poll():
                last = time.monotonic()
        return self.got

    def close(self) -> None:
        self.consumer.close()


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["SPILLWAY_TOPIC_NAMESPACE"] = settings.topic_namespace
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    env["SPILLWAY_MAX_AGE_S"] = str(settings.max_age_s)
    env.pop("SPILLWAY_CONFIG", None)
    return env


@contextmanager
def worker(
    settings: Settings, *args: str, log: Path | None = None, module: str = "streams.agents"
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m streams.agents ARGS`` (or ``module``) in a subprocess; stopped with SIGTERM
    afterwards."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=worker_env(settings),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if log:
            out.close()  # type: ignore[union-attr]


def wait_for_members(settings: Settings, group: str, n: int, timeout_s: float) -> list[Any]:
    """The partitions of each of ``n`` members of ``group``, once each holds some."""

    def ready(g: Group) -> bool:
        return len(g.members) == n and all(m.partitions for m in g.members)

    found = wait_for_group(settings, group, ready, timeout_s, 0.5, "spillway-tests")
    if found is None:
        with admin_session(settings, "spillway-tests", request_timeout_s=10.0) as admin:
            last = describe_group(admin, group)
        got = [set(m.partitions) for m in last.members]
        raise AssertionError(f"group {group}: expected {n} members with partitions, got {got}")
    return [set(m.partitions) for m in found.members]


@contextmanager
def log_tails_on_failure(logs: list[Path], chars: int = 3000) -> Iterator[None]:
    """An ``AssertionError`` raised inside gets the tail of each worker log appended."""
    try:
        yield
    except AssertionError as exc:
        tails = "\n".join(f"--- {p.name} ---\n{p.read_text()[-chars:]}" for p in logs)
        raise AssertionError(f"{exc}\n{tails}") from None
