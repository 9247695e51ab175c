"""Benchmark of the agents on the reference site (simulated by ``streams.sim``).

``python -m streams.bench.agents --seconds 20 --scale 0.1``

1. Throughput: ``--seconds`` of telemetry are simulated and encoded first; the workers
   (subprocesses, as in production) start and are warmed up (they have joined their group,
   restored their tables and emitted a second); then they are stopped (SIGSTOP), the
   backlog is sent and flushed, and they are resumed (SIGCONT). Readings per second =
   backlog readings / (emission of the backlog's last SitePower - resumption): a drain of
   data already in the topics, as the limit and the faust floor of ``spillway bench`` are
   timed, without the producer and the broker's ingest on the workers' cores (collectors
   run on other machines). ``--produce-while-draining`` sends the backlog while they run
   instead and times from the start of sending (the measure before 2026-11-27's sixth
   session). The pause is short (seconds) next to faust's 60 s session timeout. Its clock
   jump shows once in a worker's log: mode's "Thread keepalive is not responding" and,
   at times, a tail-watch seek of a partition not delivered "for 2 s" (its frames are then
   fetched again and dropped as re-deliveries).
2. Latency: ``--live-seconds`` more are produced live: every reading of a second is stamped
   with the real time at the start of that second, and the second's frames are sent at that
   moment (as collectors sampling on the second do); they are simulated and encoded before
   the first of them, so that the simulator does not take CPU from the workers while they
   work through a second (collectors run on other machines). Per SitePower, the latency is
   ``emitted_s - ts_s``: from the readings' timestamp to the decision they complete. A
   second closes once every partition has sent it in full (``--lateness`` only bounds the
   wait for sources that fall silent). ``emitted_s - (ts_s + 1)`` is also given: from the
   end of the second (negative when it closed before the second was over).

Everything runs in a private topic namespace that is deleted afterwards (``--keep`` keeps
it). ``--profile FILE`` runs the worker under py-spy (``pip install py-spy``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from infra.admin import Group, admin_session, committed_offsets, end_offsets
from infra.admin import wait_for_group as wait_until_group
from infra.provision import delete_namespace, provision
from schemas.events import SitePower
from streams.agents.sites import publish_site
from streams.io.kafka import TopicProducer, make_consumer
from streams.procstats import proc_stats
from streams.settings import Settings, load_settings
from streams.sim.encode import ENCODINGS, FrameEncoder
from streams.sim.model import SiteModel
from streams.site_file import load_site_file
from streams.site_scale import scale_site

REFERENCE = Path(__file__).resolve().parents[2] / "infra" / "sites" / "reference-400mw.toml"


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


class PowerReader:
    def __init__(self, settings: Settings) -> None:
        self.consumer = make_consumer(settings, f"bench-{uuid.uuid4().hex[:8]}")
        self.consumer.subscribe([TopicProducer(settings).topic("site.power.v1")])
        self.dec = msgspec.json.Decoder(SitePower)
        self.powers: dict[int, SitePower] = {}

    def until(self, last_ts: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while last_ts not in self.powers:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"bench: no SitePower for {last_ts} after {timeout_s:.0f} s "
                    f"({len(self.powers)} seconds received)"
                )
            self.poll(0.2)

    def poll(self, timeout_s: float) -> None:
        for m in self.consumer.consume(1000, timeout=timeout_s):
            if m.error() is None:
                p = self.dec.decode(m.value() or b"")
                self.powers.setdefault(p.ts_s, p)


def py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def dump_stacks(pid: int, log: BinaryIO) -> None:
    """Append the Python stacks of worker ``pid`` to ``log``: its asyncio tasks (mode's
    worker prints them on SIGUSR1) and its threads (py-spy)."""
    os.kill(pid, signal.SIGUSR1)
    time.sleep(2)
    spy = py_spy()
    log.write(f"\n--- py-spy dump of worker {pid} (bench timed out) ---\n".encode())
    log.flush()
    try:
        subprocess.run(  # noqa: S603 - fixed argv
            [spy, "dump", "--pid", str(pid)], stdout=log, stderr=subprocess.STDOUT, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.write(f"py-spy dump failed: {exc}\n".encode())


def print_tail(path: Path, lines: int) -> None:
    """A worker's last warnings and errors, then the last ``lines`` lines of its log (the
    stack dump), to stderr."""
    text = path.read_text(errors="replace").splitlines()
    warned = [line for line in text if "[WARNING]" in line or "[ERROR]" in line][-20:]
    print(f"--- {path}: last {len(warned)} warnings and errors ---", file=sys.stderr)
    for line in [*warned, f"--- {path}: last {lines} lines ---", *text[-lines:]]:
        print(line[:300], file=sys.stderr)


def group_positions(settings: Settings, group: str) -> list[str]:
    """``topic[partition] committed/end`` of every partition ``group`` has committed."""
    with admin_session(settings, "spillway-bench") as admin:
        offsets = committed_offsets(admin, group)
        ends = end_offsets(admin, offsets)
    return [
        f"{topic}[{partition}] committed {off} of {ends[(topic, partition)]}"
        for (topic, partition), off in sorted(offsets.items())
    ]


def wait_for_group(settings: Settings, group: str, members: int, timeout_s: float) -> float:
    """Wall time at which the workers' group is stable, each with partitions."""

    def stable(g: Group) -> bool:
        return g.state == "Stable" and len(g.members) == members and all(
            m.partitions for m in g.members
        )

    found = wait_until_group(settings, group, stable, timeout_s, 0.1, "spillway-bench")
    if found is not None:
        return time.time()
    raise TimeoutError(f"bench: worker group {group} not stable after {timeout_s:.0f} s")


def _encode_steps(
    model: SiteModel, enc: FrameEncoder, times: list[float]
) -> tuple[list[tuple[str, bytes, bytes]], int]:
    msgs: list[tuple[str, bytes, bytes]] = []
    readings = 0
    for t in times:
        step = model.step(t)
        readings += step.readings
        msgs.extend(enc.encode(step))
    return msgs, readings


def _send(producer: TopicProducer, msgs: list[tuple[str, bytes, bytes]]) -> None:
    for topic, key, value in msgs:
        producer.send(topic, value, key=key)


def _signal_all(workers: list[subprocess.Popen[bytes]], sig: signal.Signals) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(sig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    base = load_settings()
    settings = base.model_copy(
        update={"topic_namespace": f"bench{uuid.uuid4().hex[:8]}", "max_age_s": 86400.0}
    )
    provision(settings)
    loaded = scale_site(load_site_file(REFERENCE), args.scale)
    site, sim = loaded.site, loaded.sim
    publish_site(settings, site)
    model = SiteModel(site, sim)
    enc = FrameEncoder(model, args.encoding)
    producer = TopicProducer(settings)
    now = math.floor(time.time())
    warm_n = args.lateness + 2
    first = now - args.seconds - warm_n - 5
    warm_ts = [float(first + i) for i in range(warm_n)]
    backlog_ts = [float(first + warm_n + i) for i in range(args.seconds)]
    # Frames are simulated and encoded before anything is timed.
    warm, _ = _encode_steps(model, enc, warm_ts)
    encode_started = time.perf_counter()
    backlog, readings = _encode_steps(model, enc, backlog_ts)
    encode_s_per_second = (time.perf_counter() - encode_started) / max(1, args.seconds)
    reader = PowerReader(settings)
    env = dict(os.environ)
    env["SPILLWAY_TOPIC_NAMESPACE"] = settings.topic_namespace
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    env["SPILLWAY_MAX_AGE_S"] = str(settings.max_age_s)
    cmd = [sys.executable, "-m", "streams.agents", "--site", site.site_id, "--tick", "off"]
    cmd += ["--lateness", str(args.lateness), "--loglevel", args.loglevel]
    if args.profile:
        cmd = [py_spy(), "record", "-o", args.profile, "--format", "speedscope", "--", *cmd]
    logs = [open(f"{args.log}.{i}", "wb") for i in range(args.workers)]  # noqa: SIM115
    workers = [subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    try:
        wait_for_group(settings, f"{settings.topic_namespace}.spillway-agents", args.workers, 120)
        # Warm-up: the worker has joined, restored its tables and emitted a second.
        _send(producer, warm)
        producer.flush(60)
        reader.until(int(warm_ts[0]), args.timeout)
        # Throughput: the backlog drained from the topics (see the module's docstring).
        paused = not args.produce_while_draining and not args.profile
        if paused:
            # The backlog goes into the topics while the workers are stopped, then they go
            # on: the drain is timed on data already there, as the limit and the faust floor
            # are, without the producer and the broker's ingest on the same cores.
            _signal_all(workers, signal.SIGSTOP)
        sending = time.time()
        try:
            _send(producer, backlog)
            producer.flush(120)
        finally:
            sent_s = time.time() - sending
            cpu_before = sum(proc_stats(w.pid).cpu_s for w in workers)
            started = time.time() if paused else sending
            if paused:
                _signal_all(workers, signal.SIGCONT)
        last_backlog = int(backlog_ts[-1]) - args.lateness - 1
        reader.until(last_backlog, args.timeout)
        drained = [reader.powers[int(ts)] for ts in backlog_ts if int(ts) <= last_backlog]
        span = drained[-1].emitted_s - started
        # CPU is steadier than wall time on a shared machine: the workers' own seconds.
        cpu_s = sum(proc_stats(w.pid).cpu_s for w in workers) - cpu_before
        throughput = readings / span if span > 0 else math.nan
        # Live: one second of frames at the start of each real second, encoded beforehand
        # for seconds far enough ahead (twice the measured encoding time, plus one).
        ahead = math.ceil(2 * encode_s_per_second * args.live_seconds) + 1
        live_ts = [math.floor(time.time()) + ahead + i for i in range(args.live_seconds)]
        live_msgs = [_encode_steps(model, enc, [float(ts)])[0] for ts in live_ts]
        for ts, msgs in zip(live_ts, live_msgs, strict=True):
            time.sleep(max(0.0, ts - time.time()))
            _send(producer, msgs)
            producer.producer.poll(0)
        producer.flush(60)
        if live_ts and live_ts[-1] - args.lateness - 1 >= live_ts[0]:
            reader.until(live_ts[-1] - args.lateness - 1, args.timeout)
        live = [reader.powers[ts] for ts in live_ts if ts in reader.powers]
        from_start = [p.emitted_s - p.ts_s for p in live]
        from_end = [p.emitted_s - (p.ts_s + 1) for p in live]
        return {
            "scale": args.scale,
            "encoding": args.encoding,
            "workers": args.workers,
            "readings_per_site_second": round(readings / args.seconds),
            "backlog_seconds": args.seconds,
            "backlog_readings": readings,
            "backlog_messages": len(backlog),
            "producer_s": round(sent_s, 2),
            "backlog_produced_while_draining": not paused,
            "drain_s": round(span, 2),
            "readings_per_s": round(throughput),
            "workers_cpu_s": round(cpu_s, 2),
            "readings_per_cpu_s": round(readings / cpu_s) if cpu_s > 0 else None,
            "lateness_s": args.lateness,
            "live_seconds": len(live),
            "latency_from_second_start_s": {
                "p50": round(percentile(from_start, 50), 3),
                "p99": round(percentile(from_start, 99), 3),
            },
            "latency_from_second_end_s": {
                "p50": round(percentile(from_end, 50), 3),
                "p99": round(percentile(from_end, 99), 3),
            },
            "latency_by_second_s": [round(x, 3) for x in from_start],
            "late_readings_backlog": sum(p.late_readings for p in drained),
            "late_readings_live": sum(p.late_readings for p in live),
        }
    except TimeoutError:
        # A stalled worker is diagnosed while it still hangs: its stacks go into its log.
        for w, log in zip(workers, logs, strict=True):
            dump_stacks(w.pid, log)
            log.flush()
        for line in group_positions(settings, f"{settings.topic_namespace}.spillway-agents"):
            print(line, file=sys.stderr)
        # The logs may be on a machine that is gone by the time anyone reads them (CI).
        for log in logs:
            print_tail(Path(log.name), 60)
        raise
    finally:
        for w in workers:
            w.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
        for w in workers:
            try:
                w.wait(60)
            except subprocess.TimeoutExpired:
                w.kill()
        for log in logs:
            log.close()
        reader.consumer.close()
        if not args.keep:
            delete_namespace(settings)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m streams.bench.agents", description=__doc__)
    p.add_argument("--seconds", type=int, default=20, help="backlog seconds of telemetry")
    p.add_argument("--scale", type=float, default=0.1, help="share of the reference site")
    p.add_argument("--live-seconds", type=int, default=10, help="live seconds for latency")
    p.add_argument("--lateness", type=int, default=2, help="agents' --lateness (2)")
    p.add_argument("--workers", type=int, default=1, help="worker processes in the group")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--log", default="/tmp/spillway-bench-worker.log", help="(+ .<n>)")
    p.add_argument(
        "--profile",
        default=None,
        help="py-spy speedscope output file (the backlog is then sent while the workers drain: "
        "a pause would stop py-spy, not them)",
    )
    p.add_argument("--keep", action="store_true", help="keep the bench topics")
    p.add_argument(
        "--produce-while-draining",
        action="store_true",
        help="send the backlog while the workers drain it (the measure before 2026-11-27's "
        "sixth session: the producer and the broker's ingest share the workers' cores)",
    )
    p.add_argument("--loglevel", default="warn", help="workers' log level (warn)")
    p.add_argument(
        "--encoding", choices=ENCODINGS, default="json", help="telemetry frame encoding (json)"
    )
    args = p.parse_args(argv)
    if args.profile and args.workers != 1:
        p.error("--profile needs --workers 1")
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
