"""The actuator process: miner commands from Kafka to devices, outcomes back to Kafka.

Thin I/O around ``delivery.step`` (miners) and ``gpu_tier.gpu_step`` (GPU caps, when the
fleet file has a ``[gpu]`` node). Order of writes makes a restart safe: the commands in
force (compacted ``actuation.in_force.v1``) and the pauses (``actuation.pause.v1``) are
flushed before the consumed offsets are committed, so a command or pause is either re-read
or restored from those topics, never forgotten. Malformed commands go to the dead-letter
topic with their bytes and the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from infra.topics import full_name
from schemas.actuation import ActuationOutcome, AuditEvent, CommandInForce, SitePause
from schemas.events import CurtailmentEvent, MinerCommand
from streams.actuation import firmware
from streams.actuation.delivery import (
    Ack,
    Command,
    Input,
    Output,
    Pause,
    Policy,
    Reading,
    Restore,
    Send,
    State,
    Tick,
    new_state,
    shortfall_w,
    step,
    watching,
)
from streams.actuation.fleet import ActuationFleet
from streams.actuation.gpu_caps import CapPolicy, GpuCapAgent, GpuSlot
from streams.actuation.gpu_tier import (
    ENDED_KINDS,
    GpuInput,
    GpuNeed,
    GpuOutput,
    GpuRecover,
    MinersShort,
    SetLimit,
    TierState,
    gpu_step,
    gpu_watching,
    miners_floor_w,
    need_beyond_miners,
)
from streams.actuation.pause import PAUSES, pause_record, restored_pauses
from streams.actuation.pdu import outlet_power, set_outlet
from streams.collectors.asic_client import poll_miner
from streams.io.kafka import TopicProducer, make_consumer
from streams.io.validated import Validator
from streams.settings import Settings

log = logging.getLogger(__name__)
COMMANDS = "miners.commands.v1"
OUTCOMES = "actuation.outcomes.v1"
IN_FORCE = "actuation.in_force.v1"
AUDIT = "actuation.audit.v1"
CURTAILMENTS = "curtailment.events.v1"
_enc = msgspec.json.Encoder()
T = TypeVar("T", bound=msgspec.Struct)


def command_input(c: MinerCommand) -> Command:
    return Command(
        command_id=c.command_id,
        site_id=c.site_id,
        action=c.action,
        device_ids=list(c.miner_ids),
        issued_at_s=c.issued_at_s,
        deadline_s=c.deadline_s,
        power_limit_w=c.power_limit_w,
    )


OPERATOR_REQUESTS = ("request_pause", "request_resume", "request_override")


def operator_request(
    site_id: str, operator: str, action: str, subject: str, detail: str = ""
) -> AuditEvent:
    """What ``spillway actuate pause|resume|override`` publishes on the audit topic."""
    now = time.time()
    return AuditEvent(
        audit_id=f"{site_id}/{subject}/{action}/{now:.3f}",
        site_id=site_id,
        at_s=now,
        actor=f"operator:{operator}",
        action=action,
        subject=subject,
        detail=detail,
    )


def operator_inputs(e: AuditEvent) -> list[Input]:
    """Delivery inputs for an operator's request; the actuator's own audit lines give none."""
    if not e.actor.startswith("operator:") or e.action not in OPERATOR_REQUESTS:
        return []
    if e.action in ("request_pause", "request_resume"):
        return [Pause(e.site_id, e.action == "request_pause", e.actor, e.at_s)]
    try:
        spec = msgspec.json.decode(e.detail)
        return [
            Command(
                command_id=e.subject,
                site_id=e.site_id,
                action=spec["action"],
                device_ids=list(spec["miner_ids"]),
                issued_at_s=e.at_s,
                power_limit_w=spec.get("power_limit_w"),
                source="operator",
                actor=e.actor,
            )
        ]
    except (msgspec.DecodeError, KeyError, TypeError) as exc:
        log.error("override %s from %s ignored: %s", e.subject, e.actor, exc)
        return []


def read_in_force(settings: Settings, timeout_s: float = 30.0) -> list[CommandInForce]:
    """The commands in force now: the latest record per device."""
    return read_latest(settings, IN_FORCE, CommandInForce, timeout_s)


def read_pauses(settings: Settings, timeout_s: float = 30.0) -> list[SitePause]:
    """The latest pause or resume per site."""
    return read_latest(settings, PAUSES, SitePause, timeout_s)


def read_latest(settings: Settings, name: str, kind: type[T], timeout_s: float) -> list[T]:
    """A compacted topic read to its end now: the latest record per key. Retries while the
    partitions have no leader yet (a topic just created: NOT_LEADER, which librdkafka does
    not flag retriable)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return _read_latest(settings, name, kind, deadline)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _read_latest(settings: Settings, name: str, kind: type[T], deadline: float) -> list[T]:
    topic = full_name(name, settings.topic_namespace)
    consumer: Consumer = make_consumer(settings, f"spillway-actuator-restore-{time.time_ns()}")
    latest: dict[bytes, T] = {}
    try:
        meta = consumer.list_topics(topic, timeout=10)
        parts = list(meta.topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        }
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        while todo and time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=0.5):
                if m.error() is not None:
                    continue
                value = m.value()
                if value:
                    latest[m.key() or b""] = msgspec.json.decode(value, type=kind)
                if (m.offset() or 0) + 1 >= ends[m.partition() or 0]:
                    todo.discard(m.partition() or 0)
        if todo:
            raise TimeoutError(f"{name}: partitions {sorted(todo)} not read to the end")
    finally:
        consumer.close()
    return list(latest.values())


@dataclass
class Actuator:
    settings: Settings
    fleet: ActuationFleet
    policy: Policy = field(default_factory=Policy)
    group_id: str = "spillway-actuator"
    poll_period_s: float = 1.0
    concurrency: int = 512
    timeout_s: float = 5.0
    clock: Callable[[], float] = time.time
    state: State | None = None
    counts: dict[str, int] = field(default_factory=dict)
    gpu_agents: dict[str, GpuCapAgent] = field(default_factory=dict)
    """Node id -> NVML access: the GPU tier (none: miners only)."""
    cap_policy: CapPolicy = field(default_factory=CapPolicy)
    gpu_state: TierState = field(default_factory=TierState)

    def __post_init__(self) -> None:
        self.producer = TopicProducer(self.settings)
        self.inbox: asyncio.Queue[Input] = asyncio.Queue()
        self.sem = asyncio.Semaphore(self.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        # The GPU tier comes after every miner tier.
        self.gpu_tier = 1 + max((d.tier for d in self.fleet.devices), default=0)
        self.short_fed: dict[str, float] = {}
        """Site -> the miners' shortfall last handed to the GPU tier."""

    def pause(self, site_id: str, paused: bool, actor: str) -> None:
        self.inbox.put_nowait(Pause(site_id, paused, f"operator:{actor}", self.clock()))

    def emit(self, outs: list[Output] | list[GpuOutput]) -> None:
        for o in outs:
            if isinstance(o, Send):
                self._spawn(self._deliver(o))
                continue
            if isinstance(o, SetLimit):
                self._spawn(self._set_gpu(o))
                continue
            if isinstance(o, CommandInForce):
                self.producer.send(IN_FORCE, _enc.encode(o), o.device_id.encode())
            elif isinstance(o, ActuationOutcome):
                self.producer.send(OUTCOMES, _enc.encode(o), o.device_id.encode())
            elif isinstance(o, AuditEvent):
                self.producer.send(AUDIT, _enc.encode(o), o.site_id.encode())
                kept = pause_record(o)
                if kept is not None:
                    self.producer.send(PAUSES, _enc.encode(kept), o.site_id.encode())
            name = type(o).__name__ if not isinstance(o, ActuationOutcome) else o.kind
            self.counts[name] = self.counts.get(name, 0) + 1

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, s: Send) -> None:
        async with self.sem:
            try:
                async with asyncio.timeout(self.timeout_s):
                    if s.via == "outlet":
                        outlet = self.fleet.outlets.get(s.outlet or "")
                        if outlet is None:
                            ok, detail = False, f"{s.device_id} has no outlet in the fleet file"
                        else:
                            on = s.action in ("outlet_on", "wake")
                            ok, detail = await set_outlet(outlet, on, self.timeout_s)
                    else:
                        ep = self.fleet.endpoints[s.device_id]
                        ok, detail = await firmware.send(ep, s.action, s.power_limit_w, self.http)
            except TimeoutError:
                ok, detail = False, f"no answer within {self.timeout_s:g} s"
            except Exception as exc:  # a bug or an unforeseen reply must not lose the ack
                log.exception("delivering %s to %s", s.command_id, s.device_id)
                ok, detail = False, f"{type(exc).__name__}: {exc}"
        self.inbox.put_nowait(Ack(s.device_id, s.command_id, s.attempt, ok, self.clock(), detail))

    async def _set_gpu(self, s: SetLimit) -> None:
        agent = self.gpu_agents.get(s.node)
        try:
            if agent is None:
                raise LookupError(f"no GPU agent for node {s.node!r}")
            async with asyncio.timeout(self.timeout_s):
                got = await asyncio.to_thread(agent.set_limit, s.index, s.limit_w)
            ok, detail = True, f"limit reads back {got:.0f} W"
        except TimeoutError:
            ok, detail = False, f"NVML did not answer within {self.timeout_s:g} s"
        except Exception as exc:  # NVMLError (no permission, bad limit) or a bug
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        at = self.clock()
        self.inbox.put_nowait(Ack(s.device_id, s.command_id, s.attempt, ok, at, detail))

    def _gpu_slots(self) -> tuple[GpuSlot, ...]:
        return tuple(s for a in self.gpu_agents.values() for s in a.slots())

    async def _read_gpu(self, node: str, index: int, device_id: str) -> None:
        at = self.clock()
        try:
            w = await asyncio.to_thread(self.gpu_agents[node].power_w, index)
        except Exception:
            log.exception("reading %s", device_id)
            return
        self.inbox.put_nowait(Reading(device_id, w, at))

    def gpu_need(self, ev: CurtailmentEvent, slots: tuple[GpuSlot, ...]) -> GpuNeed:
        floor = miners_floor_w(self.fleet.devices, ev.site_id, self.policy)
        return GpuNeed(
            ev.site_id,
            ev.event_id,
            tuple(ev.reasons),
            need_beyond_miners(ev, floor),
            ev.ts_s,
            ev.deadline_s,
            slots,
            ev.kind in ENDED_KINDS,
        )

    async def _gpu_need(self, ev: CurtailmentEvent) -> GpuNeed:
        need = self.gpu_need(ev, ())
        short = shortfall_w(self.state, ev.site_id) if self.state is not None else 0.0
        if need.ended or need.need_w <= 0 and short <= 0:
            return need  # nothing to cap (a release: the tier restores from what it saved)
        return self.gpu_need(ev, await asyncio.to_thread(self._gpu_slots))

    async def _miners_short(self, sites: set[str], at_s: float) -> list[GpuInput]:
        """Each site's shortfall after escalation, when it changed: the GPU tier adds it to
        the need of the site's active grid or 4CP event."""
        assert self.state is not None
        out: list[GpuInput] = []
        for site in sorted(sites):
            w = shortfall_w(self.state, site)
            if w == self.short_fed.get(site, 0.0):
                continue
            self.short_fed[site] = w
            slots = await asyncio.to_thread(self._gpu_slots) if w > 0 else ()
            out.append(MinersShort(site, w, at_s, tuple(slots)))
        return out

    def step_gpu(self, inputs: list[GpuInput]) -> None:
        self.gpu_state, outs = gpu_step(
            self.gpu_state, inputs, self.cap_policy, self.policy, self.gpu_tier
        )
        self.emit(outs)

    async def _read(self, device_id: str) -> None:
        assert self.state is not None
        d = self.state.deliveries.get(device_id)
        if d is None:
            return
        async with self.sem:
            at = self.clock()
            if d.via == "outlet":
                power = await outlet_power(
                    self.fleet.outlets[self.state.fleet[device_id].outlet or ""]
                )
            else:
                reading = await poll_miner(
                    self.fleet.endpoints[device_id], self.timeout_s, self.http
                )
                power = reading.power_w
        self.inbox.put_nowait(Reading(device_id, power, at))

    async def _poller(self) -> None:
        while True:
            await asyncio.sleep(self.poll_period_s)
            reads = [
                self._read_gpu(t.node, t.index, t.device_id) for t in gpu_watching(self.gpu_state)
            ]
            if self.state is not None:
                reads += [self._read(m) for m in watching(self.state)]
            await asyncio.gather(*reads)

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Until ``stop`` is set. Cancelling the task is a crash: nothing more is flushed."""
        now = self.clock()
        records = await asyncio.to_thread(read_in_force, self.settings)
        pauses = await asyncio.to_thread(read_pauses, self.settings)
        mine = [r for r in records if r.device_id in self.fleet.endpoints]
        self.state = new_state(self.fleet.devices, now, self.policy)
        sites = {d.site_id for d in self.fleet.devices}
        restored: list[Input] = list(restored_pauses(pauses, sites, now))
        if mine:
            restored.append(Restore(mine, now))
        if restored:
            self.state, outs = step(self.state, restored, self.policy)
            self.emit(outs)
        if self.gpu_agents:
            left = tuple(r for r in records if r.action == "gpu_cap")
            slots = await asyncio.to_thread(self._gpu_slots) if left else ()
            self.step_gpu([GpuRecover(left, slots, now)])
        consumer = make_consumer(self.settings, self.group_id)
        ns = self.settings.topic_namespace
        # Operator requests (pause, resume, override) arrive as audit events: audited by
        # construction, and only principals allowed to write the audit topic can make them.
        topics = [COMMANDS, AUDIT] + ([CURTAILMENTS] if self.gpu_agents else [])
        consumer.subscribe([full_name(t, ns) for t in topics])
        validator = Validator(self.settings, self.producer, self.group_id)
        connector = aiohttp.TCPConnector(limit=self.concurrency, force_close=True)
        self.http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
        )
        poller = asyncio.create_task(self._poller())
        graceful = False
        try:
            while not stop.is_set():
                msgs = await asyncio.to_thread(consumer.consume, 500, 0.05)
                if ready is not None and consumer.assignment():
                    ready.set()
                inputs: list[Input] = []
                gpu: list[GpuInput] = []
                for _, c in validator.decode_batch(m for m in msgs if m.error() is None):
                    if isinstance(c, MinerCommand):
                        inputs.append(command_input(c))
                    elif isinstance(c, AuditEvent):
                        inputs += operator_inputs(c)
                    elif isinstance(c, CurtailmentEvent) and c.site_id in sites:
                        gpu.append(await self._gpu_need(c))
                while not self.inbox.empty():
                    x = self.inbox.get_nowait()
                    inputs.append(x)
                    if isinstance(x, Ack | Reading):
                        gpu.append(x)  # each machine ignores the devices it does not track
                tick = Tick(self.clock())
                self.state, outs = step(self.state, [*inputs, tick], self.policy)
                self.emit(outs)
                if self.gpu_agents:
                    gpu += await self._miners_short(sites, tick.now_s)
                    self.step_gpu([*gpu, tick])
                if msgs:
                    # In force before the offsets: a crash in between re-reads, never forgets.
                    await asyncio.to_thread(self.producer.flush, 30.0)
                    await asyncio.to_thread(consumer.commit, asynchronous=False)
                self.producer.producer.poll(0)
                await asyncio.sleep(0.02)
            graceful = True
        finally:
            poller.cancel()
            for t in list(self._tasks):
                t.cancel()
            await self.http.close()
            if graceful:
                await asyncio.to_thread(self.producer.flush, 30.0)
            await asyncio.to_thread(consumer.close)
