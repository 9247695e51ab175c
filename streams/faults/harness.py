"""Run agents + sink on a private broker through a fault schedule, then compare the marts
with the offline truth.

The broker is the harness's own (``home`` and ``broker_port`` of its choice), so stopping
it never touches a shared broker. Agents and sink run as ``spillway`` child processes, as
in production; the recorded scenario is produced at ``speed`` simulated seconds per wall
second by an idempotent producer (a broker restart neither loses nor repeats input).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The harness is the I/O side of streams/faults (pyproject's TID251 ignores do not list
# this package yet); scenario, truth, schedule and compare stay pure.
import duckdb
import msgspec
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from infra import broker
from infra.admin import Group, admin_session, describe_group, wait_for_group
from infra.provision import provision
from infra.topics import DEADLETTER, full_name
from schemas.deadletter import DeadLetter
from streams.agents.sites import publish_site
from streams.faults.compare import EVENT_TABLES, Comparison, Marts, compare_all
from streams.faults.scenario import PRICE_TOPIC, Message, aligned_start, build_scenario
from streams.faults.schedule import Fault, FaultKind, plan_faults
from streams.faults.truth import Truth, compute_truth
from streams.io.kafka import TopicProducer, make_consumer
from streams.pipeline.day import group_lag
from streams.pipeline.procs import Child, child_env, start_child
from streams.settings import Settings

Say = Callable[[str], None]
AGENTS_CONSUMER = "spillway-agents"
"""``consumer`` of the agents' dead letters (AgentOptions.consumer_name)."""


@dataclass(frozen=True)
class RunConfig:
    home: Path
    """Private folder: broker data, logs, RocksDB, the sink database."""
    seconds: int = 240
    speed: float = 2.0
    """Simulated seconds produced per wall second."""
    kills_agents: int = 3
    kills_sink: int = 3
    broker_restarts: int = 1
    stalls: int = 1
    seed: int = 1
    lateness_s: int = 5
    broker_port: int = 19192
    session_timeout_s: float = 10.0
    """Agents' consumer session (faust ``BROKER_SESSION_TIMEOUT``); a stall lasts longer."""
    libs_from: Path | None = None
    """A home whose downloaded Kafka jars the private broker reuses."""
    drain_s: float = 150.0


_READ_BACK = re.compile(r"the consumer skipped offsets \d+\.\.\d+; read (\d+) of them back")


def skips_read_back(lines: Iterable[str]) -> tuple[int, int]:
    """(times, messages) the agents read skipped offsets back, from their log lines."""
    found = [int(m.group(1)) for line in lines if (m := _READ_BACK.search(line))]
    return len(found), sum(found)


@dataclass
class FaultReport:
    config: RunConfig
    namespace: str = ""
    faults: list[Fault] = field(default_factory=list)
    survived: Counter[str] = field(default_factory=Counter)
    rebalances: int = 0
    unexpected_exits: list[str] = field(default_factory=list)
    produced: int = 0
    comparison: Comparison = field(default_factory=Comparison)
    topic_redeliveries: dict[str, int] = field(default_factory=dict)
    """Output topic -> messages the agents sent more than once (absorbed by the sink)."""
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    """Groups that did not drain (a stuck consumer)."""
    read_back: tuple[int, int] = (0, 0)
    """(times, messages): offsets the agents' consumer skipped and they read back."""

    @property
    def ok(self) -> bool:
        return self.comparison.ok and not self.unexpected_exits and not self.notes

    def table(self) -> str:
        c = self.comparison
        rows = [
            ("agents kills survived", self.survived["kill_agents"]),
            ("sink kills survived", self.survived["kill_sink"]),
            ("broker restarts survived", self.survived["broker_restart"]),
            ("stalls (SIGSTOP > session)", self.survived["stall_agents"]),
            ("rebalances observed", self.rebalances),
            ("skips read back (times/msgs)", "{} / {}".format(*self.read_back)),
            ("unexpected child exits", len(self.unexpected_exits)),
            ("messages produced", c.produced),
            ("in marts", c.in_marts),
            ("dead-lettered", c.dead_lettered),
            ("lost (must be 0)", c.lost),
            ("duplicates (must be 0)", c.duplicates),
            ("mart rows not in the truth", c.extra_rows),
            ("differences from truth", len(c.differences)),
            ("wall seconds", f"{self.wall_s:.0f}"),
        ]
        width = max(len(r[0]) for r in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        lines.append("")
        lines.append(
            f"{'topic':<22} {'produced':>9} {'in marts':>9} {'dead':>6} "
            f"{'lost':>5} {'letters resent':>14}"
        )
        for t in c.counts:
            lines.append(
                f"{t.topic:<22} {t.produced:>9} {t.in_marts:>9} "
                f"{t.dead_lettered:>6} {t.lost:>5} {t.redelivered_letters:>14}"
            )
        if self.topic_redeliveries:
            lines.append(
                "agents' output messages sent more than once (upserted by the sink): "
                + ", ".join(f"{k} {v}" for k, v in self.topic_redeliveries.items())
            )
        lines.extend(f"DIFF {d}" for d in c.differences)
        lines.extend(f"EXIT {e}" for e in self.unexpected_exits)
        lines.extend(f"NOTE {n}" for n in self.notes)
        return "\n".join(lines)


def private_settings(base: Settings, cfg: RunConfig, namespace: str) -> Settings:
    """Settings for the harness's own broker (never the shared one)."""
    return base.model_copy(
        update={
            "home": cfg.home,
            "broker_port": cfg.broker_port,
            "kafka_bootstrap_servers": f"127.0.0.1:{cfg.broker_port}",
            "kafka_security_protocol": "PLAINTEXT",
            "broker_secure": False,
            "broker_heap_mb": 512,
            "topic_namespace": namespace,
        }
    )


def _link_jars(settings: Settings, libs_from: Path | None) -> None:
    if libs_from is None:
        return
    src = libs_from / "kafka-libs"
    dst = settings.home / "kafka-libs"
    if src.is_dir() and not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(src, target_is_directory=True)


class Producer(threading.Thread):
    """Sends the scenario second by second at ``speed`` simulated seconds per wall second."""

    def __init__(self, settings: Settings, messages: list[Message], speed: float) -> None:
        super().__init__(name="faults-producer", daemon=True)
        self.settings = settings
        self.messages = messages
        self.speed = speed
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = TopicProducer(self.settings)
            by_second: dict[int, list[Message]] = {}
            for m in self.messages:
                by_second.setdefault(m.second, []).append(m)
            t0 = time.monotonic()
            for sec in sorted(by_second):
                wait = t0 + sec / self.speed - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                for m in by_second[sec]:
                    producer.send(m.topic, m.value, key=m.key)
                    self.sent += 1
                producer.producer.poll(0)
            producer.flush(600.0)
        except BaseException as exc:  # noqa: BLE001 - reported by the harness
            self.error = exc


class Processes:
    """The agents worker and the sink as child processes, restarted after each fault."""

    def __init__(self, settings: Settings, cfg: RunConfig, site_id: str, say: Say) -> None:
        self.settings = settings
        self.cfg = cfg
        self.say = say
        ns = settings.topic_namespace
        self.agents_group = f"{ns}.spillway-agents"
        self.sink_group = f"{ns}.faults-sink"
        self.db = cfg.home / "sink.duckdb"
        env = child_env(settings, cfg.home)
        env.pop("SPILLWAY_CONFIG", None)
        # faust reads these from the environment: a short session so that a stall beyond
        # it (and a SIGKILLed member) is noticed in seconds, not the default minute.
        env.update(
            BROKER_SESSION_TIMEOUT=str(cfg.session_timeout_s),
            BROKER_HEARTBEAT_INTERVAL="1.0",
            BROKER_REBALANCE_TIMEOUT=str(2 * cfg.session_timeout_s),
        )
        self.env = env
        self.args: dict[str, list[str]] = {
            "agents": [
                "agents",
                "--site",
                site_id,
                "--tick",
                "off",
                "--lateness",
                str(cfg.lateness_s),
                "--data-dir",
                str(cfg.home / "agents"),
                "--loglevel",
                "warn",
            ],
            "sink": [
                "sink",
                "--group",
                self.sink_group,
                "--db",
                str(self.db),
                "--no-publish",
                "--batch",
                "2000",
                "--progress-every",
                "10",
            ],
        }
        self.children: dict[str, Child] = {}
        self.starts: Counter[str] = Counter()

    def start(self, name: str) -> Child:
        self.starts[name] += 1
        log = self.cfg.home / "logs" / f"{name}.{self.starts[name]}.log"
        child = start_child(name, self.args[name], self.env, log)
        self.children[name] = child
        return child

    def kill(self, name: str) -> None:
        child = self.children[name]
        if child.alive():
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait(30)

    def check(self, report: FaultReport) -> None:
        """Restart a child that exited on its own (a finding: it should survive)."""
        for name, child in list(self.children.items()):
            if not child.alive():
                report.unexpected_exits.append(
                    f"{name} exited with {child.proc.returncode}; log {child.log}:\n"
                    + child.tail(15)
                )
                self.say(f"{name} exited unexpectedly ({child.proc.returncode}); restarting")
                self.start(name)

    def stop(self) -> None:
        for name in ("sink", "agents"):
            child = self.children.get(name)
            if child is not None:
                child.stop(60.0)


def _members(settings: Settings, group: str) -> set[str]:
    try:
        with admin_session(
            settings, "spillway-faults", request_timeout_s=10.0, bootstrap_timeout_s=10.0
        ) as admin:
            return {m.member_id for m in describe_group(admin, group).members}
    except Exception:  # noqa: BLE001 - no group yet or broker busy: no members known
        return set()


def wait_assigned(settings: Settings, group: str, timeout_s: float) -> bool:
    """Until a member of ``group`` holds partitions (the worker is ready to consume)."""

    def assigned(g: Group) -> bool:
        return any(m.partitions for m in g.members)

    return wait_for_group(settings, group, assigned, timeout_s, 0.5, "spillway-faults") is not None


def _stall(settings: Settings, procs: Processes, fault: Fault, say: Say) -> bool:
    """SIGSTOP the agents beyond their session, SIGCONT; True when the group saw a
    rebalance (the worker came back under a new member id)."""
    child = procs.children["agents"]
    before = _members(settings, procs.agents_group)
    os.killpg(child.proc.pid, signal.SIGSTOP)
    time.sleep(fault.down_s)
    os.killpg(child.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        now = _members(settings, procs.agents_group)
        if now and not now & before:
            say(f"stall: agents rejoined as a new member after {fault.down_s:.0f} s stopped")
            return True
        time.sleep(1.0)
    say(f"stall: no new member id in the agents group (before {before})")
    return False


def apply_fault(
    settings: Settings, procs: Processes, fault: Fault, report: FaultReport, say: Say
) -> None:
    kind: FaultKind = fault.kind
    if kind == "kill_agents" or kind == "kill_sink":
        name = "agents" if kind == "kill_agents" else "sink"
        procs.kill(name)
        time.sleep(fault.down_s)
        procs.start(name)
    elif kind == "broker_restart":
        broker.stop(settings)
        time.sleep(fault.down_s)
        broker.start(settings, timeout_s=120.0)
    else:
        if _stall(settings, procs, fault, say):
            report.rebalances += 1
    report.survived[kind] += 1


def wait_drained(settings: Settings, group: str, max_s: float) -> bool:
    deadline = time.monotonic() + max_s
    zero = 0
    while time.monotonic() < deadline:
        try:
            lag = group_lag(settings, group)
        except Exception:  # noqa: BLE001 - broker busy right after a restart: ask again
            lag = None
        zero = zero + 1 if lag == 0 else 0
        if zero >= 3:
            return True
        time.sleep(1.5)
    return False


def read_marts(db: Path) -> Marts:
    con = duckdb.connect(str(db), read_only=True)
    try:

        def rows(sql: str) -> list[dict[str, Any]]:
            cur = con.execute(sql)
            names = [d[0] for d in cur.description or []]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

        offsets: dict[str, int] = {}
        for r in rows("SELECT topic, next_offset FROM sink_offsets"):
            offsets[r["topic"]] = offsets.get(r["topic"], 0) + int(r["next_offset"])
        return Marts(
            site_power=rows("SELECT * FROM site_power"),
            events={t: rows(f"SELECT * FROM {t}") for t in EVENT_TABLES},
            prices=rows("SELECT * FROM grid_prices"),
            sources=rows("SELECT * FROM sink_sources"),
            offsets=offsets,
        )
    finally:
        con.close()


def read_topic(settings: Settings, base: str) -> list[tuple[bytes | None, bytes]]:
    """Every message of ``base`` from the beginning to the current end."""
    topic = full_name(base, settings.topic_namespace)
    c = make_consumer(settings, f"faults-read-{uuid.uuid4().hex[:8]}")
    try:
        meta = c.list_topics(topic, timeout=30).topics[topic]
        ends = {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in meta.partitions
        }
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends if ends[p] > 0])
        left = {p: e for p, e in ends.items() if e > 0}
        out: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + 120
        while left and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=1.0):
                if m.error() is not None:
                    continue
                out.append((m.key(), m.value() or b""))
                p, off = m.partition() or 0, m.offset() or 0
                if p in left and off + 1 >= left[p]:
                    del left[p]
        if left:
            raise TimeoutError(f"faults: could not read {topic} to its end ({left} left)")
        return out
    finally:
        c.close()


def _redeliveries(settings: Settings) -> dict[str, int]:
    """Output messages the agents sent more than once (same bytes but emitted_s)."""
    out: dict[str, int] = {}
    for base in (
        "site.power.v1",
        "surplus.events.v1",
        "curtailment.events.v1",
        "miners.commands.v1",
    ):
        seen: Counter[bytes] = Counter()
        for _, value in read_topic(settings, base):
            d = msgspec.json.decode(value)
            if isinstance(d, dict):
                d.pop("emitted_s", None)
            seen[msgspec.json.encode(d, order="sorted")] += 1
        out[base] = sum(n - 1 for n in seen.values())
    return out


def run_faults(base: Settings, cfg: RunConfig, say: Say) -> tuple[FaultReport, Truth]:
    """The whole run: private broker, scenario, faults, drain, comparison."""
    namespace = f"f{uuid.uuid4().hex[:8]}"
    settings = private_settings(base, cfg, namespace)
    report = FaultReport(config=cfg, namespace=namespace)
    cfg.home.mkdir(parents=True, exist_ok=True)
    _link_jars(settings, cfg.libs_from)
    scenario = build_scenario(cfg.seconds, aligned_start(time.time(), cfg.seconds))
    truth = compute_truth(scenario, cfg.lateness_s)
    window = cfg.seconds / cfg.speed
    report.faults = plan_faults(
        cfg.seed,
        window * 0.9,
        {
            "kill_agents": cfg.kills_agents,
            "kill_sink": cfg.kills_sink,
            "broker_restart": cfg.broker_restarts,
            "stall_agents": cfg.stalls,
        },
        stall_s=cfg.session_timeout_s + 5.0,
        min_gap_s=min(
            5.0,
            window
            * 0.9
            / max(1, cfg.kills_agents + cfg.kills_sink + cfg.broker_restarts + cfg.stalls),
        ),
    )
    say(f"private broker on 127.0.0.1:{cfg.broker_port}, home {cfg.home}")
    broker.start(settings, timeout_s=120.0)
    t0 = time.monotonic()
    procs: Processes | None = None
    try:
        provision(settings)
        publish_site(settings, scenario.site)
        procs = Processes(settings, cfg, scenario.site.site_id, say)
        procs.start("agents")
        procs.start("sink")
        # Start from a running pipeline: a clean run must equal the truth.
        for group in (procs.agents_group, procs.sink_group):
            if not wait_assigned(settings, group, 120.0):
                raise RuntimeError(
                    f"faults: group {group} got no partitions in 120 s; logs in {cfg.home / 'logs'}"
                )
        # The prices first; once the agents have committed them, they are consuming.
        first = [m for m in scenario.messages if m.topic == PRICE_TOPIC]
        send = TopicProducer(settings)
        for m in first:
            send.send(m.topic, m.value, key=m.key)
        send.flush()
        if not wait_drained(settings, procs.agents_group, 120.0):
            raise RuntimeError(
                f"faults: the agents did not consume in 120 s; logs in {cfg.home / 'logs'}"
            )
        rest = [m for m in scenario.messages if m.topic != PRICE_TOPIC]
        producer = Producer(settings, rest, cfg.speed)
        say(
            f"namespace {namespace}: {len(scenario.messages)} messages over {window:.0f} s, "
            f"{len(report.faults)} faults"
        )
        producer.start()
        for fault in report.faults:
            while time.monotonic() - t0 < fault.at_s:
                procs.check(report)
                time.sleep(0.2)
            say(f"t={time.monotonic() - t0:5.1f} s  {fault.kind} ({fault.down_s:.1f} s)")
            apply_fault(settings, procs, fault, report, say)
        while producer.is_alive():
            procs.check(report)
            producer.join(0.5)
        if producer.error is not None:
            raise RuntimeError(f"faults: producing the scenario failed: {producer.error}")
        report.produced = producer.sent + len(first)
        say("produced everything; waiting for agents and sink to drain")
        # Then once more, briefly: the sink's drain may have been the agents' last output.
        for group, limit in (
            (procs.agents_group, cfg.drain_s),
            (procs.sink_group, cfg.drain_s),
            (procs.agents_group, 20.0),
            (procs.sink_group, 20.0),
        ):
            procs.check(report)
            if not wait_drained(settings, group, limit):
                lag = group_lag(settings, group)
                report.notes.append(
                    f"group {group} still {lag} messages behind after "
                    f"{limit:.0f} s (worker alive, partitions assigned)"
                )
        procs.stop()
        report.read_back = skips_read_back(
            line
            for log in sorted((cfg.home / "logs").glob("agents.*.log"))
            for line in log.read_text(errors="replace").splitlines()
        )
        marts = read_marts(procs.db)
        letters = [
            msgspec.json.decode(v, type=DeadLetter) for _, v in read_topic(settings, DEADLETTER)
        ]
        report.topic_redeliveries = {k: v for k, v in _redeliveries(settings).items() if v}
        report.comparison = compare_all(
            scenario, truth, marts, namespace, letters, AGENTS_CONSUMER, procs.sink_group
        )
    finally:
        if procs is not None:
            procs.stop()
        report.wall_s = time.monotonic() - t0
        broker.stop(settings)
    return report, truth
