"""The faust app of the real-time layer: three agents, a timer, and the state tables.

- ``stage1`` reads ``telemetry.meter/gpu/asic.v1`` in batches, decodes them against their
  contracts (rejections go to ``deadletter.v1`` with the original bytes), folds them into
  per-partition partial sums and sends ``SitePowerPartial`` keyed by site.
- ``grid`` reads ``grid.prices/dispatch/frequency.v1`` and fans every signal out to the
  sites it concerns, on the internal ``<app id>-site-inputs`` topic (keyed by site,
  co-partitioned with ``site.power.partial.v1``).
- ``stage2`` reads partials and site inputs, keyed by site, and runs combine, surplus,
  controller and alerts; it sends ``site.power.v1``, ``surplus.events.v1``,
  ``miners.commands.v1``, ``curtailment.events.v1`` and ``alerts.v1``.
- A 1-second timer polls the site directory and, on the worker that owns the grid
  partition, sends a tick for every site (deadlines and restore steps without data).

State lives in faust tables with changelogs: one Stage1State per telemetry partition and
CombineState, SurplusState, ControllerState and AlertState per site, as msgpack bytes of
their Structs. Table partitions match the source partitions (faust co-partitions topics
with the same partition count), so a worker restores exactly the partitions it owns.
"""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import faust
import msgspec
from faust.types import TP, EventT, Message, StreamT, TableT

from infra.admin import AdminError, AdminRefused, WantedTopic, admin_session, ensure_topics
from infra.topics import DEADLETTER, TELEMETRY_TOPICS, base_name, full_name, spec
from schemas.events import MinerCommand, SitePowerPartial
from schemas.registry import CONTRACTS
from schemas.restatement import RESTATED_TOPIC
from schemas.site import SiteConfig
from schemas.validation import Limits, Rejection
from streams import deadletter
from streams.agents.messages import (
    SiteInput,
    Stage1State,
    TickIn,
    decode_input,
    decode_state,
    encode,
)
from streams.agents.routing import grid_targets
from streams.agents.sites import SiteDirectory, publish_site
from streams.agents.stage1 import RawMessage, process_partition
from streams.agents.stage2 import (
    SiteStates,
    Stage2Config,
    Stage2Item,
    TickClock,
    TickMode,
    process_site,
)
from streams.decisions.alerts import AlertState
from streams.decisions.curtailment import ControllerState
from streams.decisions.power import CombineConfig, CombineState, refresh_liveness
from streams.decisions.restate import SiteRestater
from streams.decisions.surplus import SurplusState
from streams.faust_runtime import bulk
from streams.faust_runtime.continuity import check_batch
from streams.faust_runtime.current_event import acting_for
from streams.faust_runtime.lean_wait import SpillwayFaustApp
from streams.faust_runtime.readback import read_range, start_offsets
from streams.faust_runtime.tail_watch import TailWatch
from streams.gc_tuning import tune_for_throughput
from streams.observe import metrics
from streams.settings import Settings

log = logging.getLogger(__name__)

PARTIAL_TOPIC = "site.power.partial.v1"
GRID_INPUT_TOPICS = (
    "grid.prices.v1",  # first: its partition 0 marks the worker that sends the ticks
    "grid.dispatch.v1",
    "grid.frequency.v1",
    "grid.hashprice.v1",  # network hashprice: the controller's breakevens follow it
)
MAX_MINERS_PER_COMMAND = 10_000
"""Larger commands are split (``<command_id>.<k>``) to stay well under Kafka's 1 MB."""
PAUSE_S = 5.0
"""Stage 2 gets a tick at least every second; a longer wait between its batches means this
worker was not running (stopped, stalled, swapped out), and partition liveness restarts."""

S = TypeVar("S")


ROCKSDB_OPTIONS = {
    "write_buffer_size": 2 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 * 1024 * 1024,
}
"""Per RocksDB (faust opens one per table partition, 30-odd here). faust's defaults (64 MiB
memtables x 3 and a 2 GiB block cache, each) let a worker's RSS climb for many minutes;
our tables hold a few small keys that are rewritten often."""


@dataclass(frozen=True)
class AgentOptions:
    """How a worker runs; every field has a production default."""

    site: SiteConfig | None = None
    """Published to ``site.config.v1`` at start (a ``--site`` file)."""
    required_sites: tuple[str, ...] = ()
    """Site ids that must be on ``site.config.v1`` at start (else the worker refuses)."""
    app_id: str = "spillway-agents"
    """Consumer group and table prefix; the topic namespace is put in front of it."""
    lateness_s: int = 2
    idle_close_s: float | None = None
    """Close seconds this long after wall clock even without newer data (live only)."""
    partition_idle_wall_s: float = 30.0
    """A source partition that sent a partial this recently (wall clock) holds seconds open
    however far its event time lags (see ``CombineConfig.partition_idle_wall_s``)."""
    startup_hold_s: float = 2.0
    """Wall-clock seconds a site's first second waits for the partitions not seen yet."""
    max_open_s: int = 300
    """Seconds of event time a lagging partition may hold the others open (bounds state)."""
    restate_memory_s: int = 600
    """Seconds of event time behind the first unclosed second that late readings restate
    (``streams.decisions.restate``; in memory, per site)."""
    close_complete: bool = True
    """Close a second as soon as every source partition has sent it in full
    (``CombineConfig.close_complete``), not only after ``lateness_s``."""
    tick: TickMode = "wall"
    hashprice_usd_per_ph_day: float | None = None
    """Overrides every site policy's hashprice."""
    store: str = "rocksdb://"
    data_dir: Path | None = None
    """RocksDB folder of this worker (two workers must not share one); None: a temp dir."""
    batch_max: int = 4000
    batch_within_s: float = 0.05
    consumer_name: str = "spillway-agents"
    max_miners_per_command: int = MAX_MINERS_PER_COMMAND
    metrics_port: int | None = None
    """Serve Prometheus ``/metrics`` on 127.0.0.1 at this port (None: no server)."""


@dataclass
class AgentStats:
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    """Base topic -> messages sent to the dead-letter topic."""
    readings: int = 0
    redelivered: int = 0
    """Messages faust delivered again that were processed already (stage 1 drops them)."""
    read_back: int = 0
    """Messages faust skipped that the agents read back from Kafka themselves."""
    partials: int = 0
    powers: int = 0
    commands: int = 0
    curtailments: int = 0
    surplus: int = 0
    alerts: int = 0
    restated: int = 0
    """Closed seconds restated by late readings (``site.power.restated.v1``)."""
    unrestated_readings: int = 0
    """Late readings too old to restate (before this worker's memory of the site)."""


def by_partition(events: Sequence[EventT[bytes]]) -> dict[tuple[str, int], list[EventT[bytes]]]:
    """The batch's events per (topic, partition), in delivery order."""
    out: dict[tuple[str, int], list[EventT[bytes]]] = {}
    for ev in events:
        out.setdefault((ev.message.topic, ev.message.partition), []).append(ev)
    return out


class PartitionBatch(NamedTuple):
    """One partition's messages of a stage-1 batch, with where its state lives."""

    topic: str
    partition: int
    messages: list[Message]
    base: str
    """Topic name without the namespace."""
    table: TableT[bytes, bytes]
    key: bytes
    state: Stage1State
    """As loaded before the batch."""


def raw_message(msg: Message) -> RawMessage:
    return RawMessage(offset=msg.offset, key=msg.key, value=msg.value)


def split_command(cmd: MinerCommand, max_ids: int) -> list[MinerCommand]:
    """``cmd`` in parts of at most ``max_ids`` miners (ids ``<command_id>.<k>``)."""
    if len(cmd.miner_ids) <= max_ids:
        return [cmd]
    return [
        msgspec.structs.replace(
            cmd, command_id=f"{cmd.command_id}.{k}", miner_ids=cmd.miner_ids[i : i + max_ids]
        )
        for k, i in enumerate(range(0, len(cmd.miner_ids), max_ids))
    ]


def buffer_messages(batch_max: int) -> int:
    """Messages a worker holds fetched but not yet taken (faust's stream buffers, the bulk
    queue): two of stage 1's batches."""
    return max(4096, batch_max * 2)


def new_faust_app(
    app_id: str, settings: Settings, *, store: str, data_dir: Path, batch_max: int
) -> SpillwayFaustApp:
    """The faust app with the agents' settings (also the bench's faust floor)."""
    return SpillwayFaustApp(
        app_id,
        broker=[f"kafka://{h}" for h in settings.kafka_bootstrap_servers.split(",")],
        store=store,
        datadir=str(data_dir),
        topic_replication_factor=settings.topic_replication_factor,
        topic_partitions=spec(PARTIAL_TOPIC).partitions,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_max_request_size=4_000_000,
        consumer_max_fetch_size=8_388_608,
        stream_buffer_maxsize=buffer_messages(batch_max),
        table_standby_replicas=0,
    )


class SpillwayAgents:
    """The faust app plus what its agents share (site directory, caches, counters)."""

    def __init__(self, settings: Settings, options: AgentOptions) -> None:
        self.settings = settings
        self.options = options
        ns = settings.topic_namespace
        self.namespace = ns
        self.app_id = f"{ns}.{options.app_id}" if ns else options.app_id
        self.directory = SiteDirectory(settings, self.app_id)
        self.stats = AgentStats()
        self.stage2_config = Stage2Config(
            # A second closes once every live partition is past it (a backlog drains
            # partitions unevenly), and at most lateness_s behind the newest. Liveness is
            # judged on wall clock too: at 360x, a partition some seconds of event time
            # behind is still draining, not stalled.
            combine=CombineConfig(
                lateness_s=options.lateness_s,
                idle_close_s=options.idle_close_s,
                partition_watermarks=True,
                partition_idle_wall_s=options.partition_idle_wall_s,
                startup_hold_wall_s=options.startup_hold_s,
                max_open_s=options.max_open_s,
                close_complete=options.close_complete,
            ),
            tick=options.tick,
            hashprice_usd_per_ph_day=options.hashprice_usd_per_ph_day,
        )
        self._cache: dict[tuple[str, bytes], Any] = {}
        self.tails = TailWatch()
        self._last_batch_s = -math.inf
        self._clocks: dict[str, TickClock] = {}
        self._restaters: dict[str, SiteRestater] = {}
        """In memory only (see ``streams.decisions.restate``): lost with the partitions."""
        self._running_sites: set[str] = set()
        """Sites stage 2 has run since this worker got its partitions."""
        self._last_stage2_s: float | None = None
        data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="spillway-agents-"))
        self.app = new_faust_app(
            self.app_id,
            settings,
            store=options.store,
            data_dir=data_dir,
            batch_max=options.batch_max,
        )
        self._declare()

    # ------------------------------------------------------------------ wiring

    def _topic(self, *bases: str) -> faust.TopicT:
        names = [full_name(b, self.namespace) for b in bases]
        return self.app.topic(*names, key_serializer="raw", value_serializer="raw")

    def _table(self, name: str, partitions: int) -> TableT[bytes, bytes]:
        table: TableT[bytes, bytes] = self.app.Table(
            name,
            partitions=partitions,
            key_type=bytes,
            value_type=bytes,
            options=ROCKSDB_OPTIONS,
        )
        return table

    def _declare(self) -> None:
        app = self.app
        partial_n = spec(PARTIAL_TOPIC).partitions
        self.telemetry = self._topic(*TELEMETRY_TOPICS)
        self.bulk = bulk.BulkQueue(
            self.telemetry.topics, max_messages=buffer_messages(self.options.batch_max)
        )
        app.route_in_bulk(self.bulk)
        self.grid = self._topic(*GRID_INPUT_TOPICS)
        self.partials = self._topic(PARTIAL_TOPIC)
        self.site_inputs = app.topic(
            f"{self.app_id}-site-inputs",
            partitions=partial_n,
            internal=True,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.stage2_in = app.topic(
            full_name(PARTIAL_TOPIC, self.namespace),
            f"{self.app_id}-site-inputs",
            key_serializer="raw",
            value_serializer="raw",
        )
        self.out = {
            base: self._topic(base)
            for base in (
                PARTIAL_TOPIC,
                DEADLETTER,
                "site.power.v1",
                RESTATED_TOPIC,
                "surplus.events.v1",
                "miners.commands.v1",
                "curtailment.events.v1",
                "alerts.v1",
            )
        }
        # One stage-1 table per partition count, so that each is co-partitioned with the
        # telemetry topics whose partition states it holds.
        by_count: dict[int, TableT[bytes, bytes]] = {}
        self.stage1_tables: dict[str, TableT[bytes, bytes]] = {}
        for base in TELEMETRY_TOPICS:
            n = spec(base).partitions
            if n not in by_count:
                by_count[n] = self._table(f"stage1-p{n}", n)
            self.stage1_tables[base] = by_count[n]
        self.tables = {
            kind: self._table(f"site-{kind}", partial_n)
            for kind in ("combine", "surplus", "controller", "alerts")
        }
        # Stage 2's next input offset per partition (stage 1 keeps its own in Stage1State).
        self.stage2_offsets = self._table("stage2-offsets", partial_n)
        app.agent(self.telemetry, name=f"{self.app_id}.stage1", concurrency=1)(self._stage1)
        app.agent(self.grid, name=f"{self.app_id}.grid", concurrency=1)(self._grid)
        app.agent(self.stage2_in, name=f"{self.app_id}.stage2", concurrency=1)(self._stage2)
        app.timer(1.0, name=f"{self.app_id}.tick")(self._tick)
        app.timer(1.0, name=f"{self.app_id}.tails")(self._watch_tails)
        app.on_partitions_revoked.connect(self._forget)  # type: ignore[arg-type]
        app.on_partitions_assigned.connect(self._forget)  # type: ignore[arg-type]

    def _forget(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # After a rebalance the tables hold what the changelogs say, not our cache.
        self._cache.clear()
        self._clocks.clear()
        self._restaters.clear()
        self._running_sites.clear()
        self.tails.forget()

    # ------------------------------------------------------------------ start

    def prepare(self, timeout_s: float = 30.0) -> None:
        """Publish the ``--site`` config and read every site config (before agents run)."""
        self.create_internal_topic(timeout_s)
        if self.options.site is not None:
            publish_site(self.settings, self.options.site)
            self.directory.add(self.options.site)
        self.directory.load(timeout_s)
        missing = [s for s in self.options.required_sites if s not in self.directory.sites]
        if missing:
            known = ", ".join(sorted(self.directory.sites)) or "none"
            raise LookupError(
                f"agents: no config for site(s) {', '.join(missing)} on "
                f"{self.directory.topic} (known: {known}); start once with --site FILE"
            )
        log.info("site directory: %s", ", ".join(sorted(self.directory.sites)) or "no sites")

    def create_internal_topic(self, timeout_s: float = 30.0) -> None:
        """Create ``<app id>-site-inputs`` and every table's changelog unless they exist, and
        wait until the broker's metadata shows them. faust does not create a topic that is
        only consumed through a multi-topic subscription, and it creates changelogs itself
        only as the worker starts: on a loaded broker their metadata can lag, and faust's
        partition check then crashes the stage-2 agent (found by the fault suite)."""
        wanted = {
            self.site_inputs.get_topic_name(): WantedTopic(
                spec(PARTIAL_TOPIC).partitions, {"retention.ms": str(24 * 3600 * 1000)}
            )
        }
        tables = [*self.stage1_tables.values(), *self.tables.values(), self.stage2_offsets]
        for table in tables:
            name = table.changelog_topic.get_topic_name()
            wanted[name] = WantedTopic(table.partitions or 1, {"cleanup.policy": "compact"})
        rf = self.settings.topic_replication_factor
        try:
            with admin_session(
                self.settings, "spillway-agents", request_timeout_s=timeout_s
            ) as admin:
                ensure_topics(admin, wanted, rf, timeout_s)
        except (AdminError, AdminRefused) as exc:
            raise type(exc)(f"agents: {exc}") from exc

    def limits(self) -> Limits:
        s = self.settings
        return Limits(
            now_s=time.time(),
            max_frame_bytes=s.max_frame_bytes,
            max_clock_skew_s=s.max_clock_skew_s,
            max_age_s=s.max_age_s,
        )

    # ------------------------------------------------------------------ state

    def _load(self, table: TableT[bytes, bytes], key: bytes, kind: type[S], fresh: S) -> S:
        cached = self._cache.get((table.name, key))
        if cached is not None:
            result: S = cached
            return result
        raw = table.get(key)
        state = decode_state(raw, kind) if raw is not None else fresh
        self._cache[(table.name, key)] = state
        return state

    def _save(self, table: TableT[bytes, bytes], key: bytes, state: msgspec.Struct) -> None:
        self._cache[(table.name, key)] = state
        table[key] = encode(state)

    # ------------------------------------------------------------------ sending

    async def _send(self, base: str, key: bytes, value: bytes) -> Awaitable[Any]:
        # force: never attach to an event (faust would hold it until the next commit).
        return await self.out[base].send(key=key, value=value, force=True)

    async def _dead_letter(
        self, topic: str, partition: int, msg: RawMessage, base: str, rejection: Rejection
    ) -> Awaitable[Any]:
        letter = deadletter.envelope(
            topic=topic,
            partition=partition,
            offset=msg.offset,
            key=msg.key,
            value=msg.value,
            rejection=rejection,
            consumer=self.options.consumer_name,
            now_s=time.time(),
        )
        self.stats.rejected[base] += 1
        metrics.count_deadletters(base, {rejection.kind: 1})
        return await self._send(DEADLETTER, base.encode(), deadletter.encode(letter))

    async def _in_sequence(
        self,
        expected: int | None,
        topic: str,
        partition: int,
        msgs: list[RawMessage],
        *,
        drop_redelivered: bool = True,
    ) -> tuple[list[RawMessage], list[tuple[int, int]]]:
        """``msgs`` (one partition, in delivery order) lined up with the next offset
        ``expected``: in offset order, each offset once, every offset faust skipped read
        back from Kafka and put in place. Re-deliveries (below ``expected``) are dropped
        when ``drop_redelivered`` (only where ``expected`` is saved in one value with the
        state it describes: stage 1's), else put first. Also the ``[start, end)`` ranges
        it read back."""
        if expected is None and msgs:
            # No state for this partition yet: it starts where the group does, so offsets
            # faust skips before the first one it delivers are a gap as well.
            expected = (await self._start_offsets([(topic, partition)]))[(topic, partition)]
        line = check_batch(expected, [m.offset for m in msgs])
        again = [msgs[i] for i in line.again]
        kept = [msgs[i] for i in line.keep]
        self.stats.redelivered += len(again)
        name = self.options.consumer_name
        metrics.count_out_of_sequence(name, topic, "redelivered", len(again))
        if line.gaps:
            for start, end in line.gaps:
                back = await asyncio.to_thread(
                    read_range, self.settings, topic, partition, start, end
                )
                self.stats.read_back += len(back.messages)
                metrics.count_out_of_sequence(name, topic, "read_back", len(back.messages))
                metrics.count_out_of_sequence(name, topic, "lost", back.missing)
                log.warning(
                    "%s:%d: the consumer skipped offsets %d..%d; read %d of them back from Kafka",
                    topic,
                    partition,
                    start,
                    end - 1,
                    len(back.messages),
                )
                if back.missing:
                    log.error(
                        "%s:%d: %d skipped offsets are no longer on the broker (retention): lost",
                        topic,
                        partition,
                        back.missing,
                    )
                kept += [RawMessage(offset=o, key=k, value=v) for o, k, v in back.messages]
            kept.sort(key=lambda m: m.offset)
        return (kept if drop_redelivered else again + kept), line.gaps

    def _stage1_slot(self, topic: str, partition: int) -> tuple[str, TableT[bytes, bytes], bytes]:
        """Where stage 1 keeps the state of a telemetry partition: (base topic, table, key)."""
        base = base_name(topic, self.namespace)
        return base, self.stage1_tables[base], f"{base}:{partition}".encode()

    async def _expected_offsets(
        self, next_offsets: Mapping[tuple[str, int], int | None]
    ) -> dict[tuple[str, int], int]:
        """The offset stage 1 expects next per partition: its state's, else where the group
        starts the partition (all those looked up in one request)."""
        starts = await self._start_offsets([k for k, v in next_offsets.items() if v is None])
        return {k: v if v is not None else starts[k] for k, v in next_offsets.items()}

    async def _start_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """``readback.start_offsets`` for partitions with no state, all in one request."""
        if not partitions:
            return {}
        return await asyncio.to_thread(start_offsets, self.settings, self.app_id, partitions)

    async def _send_input(self, site_id: str, item: SiteInput) -> Awaitable[Any]:
        return await self.site_inputs.send(key=site_id.encode(), value=encode(item), force=True)

    # ------------------------------------------------------------------ agents

    async def _stage1(self, stream: StreamT[bytes]) -> AsyncIterator[None]:
        # Telemetry reaches stage 1 a fetch at a time through ``self.bulk``, past faust's
        # per-message path (``streams.faust_runtime.bulk``).
        opts = self.options
        taken = bulk.batches(self.app, stream, self.bulk, opts.batch_max, opts.batch_within_s)
        async with aclosing(taken):
            async for partitions in taken:
                if partitions:
                    await self._stage1_batch(partitions)
                del partitions  # held while waiting for the next batch, a rebalance would wait
                yield None

    async def _stage1_batch(self, partitions: Mapping[TP, list[Message]]) -> None:
        opts = self.options
        limits = self.limits()
        consumer = self.app.consumer
        sent: list[Awaitable[Any]] = []
        new_states: list[tuple[Message, TableT[bytes, bytes], bytes, Stage1State]] = []
        loaded: list[PartitionBatch] = []
        for tp, msgs in partitions.items():
            base, table, key = self._stage1_slot(tp.topic, tp.partition)
            with acting_for(self._event(msgs[-1])):
                state = self._load(table, key, Stage1State, Stage1State())
            loaded.append(PartitionBatch(tp.topic, tp.partition, msgs, base, table, key, state))
        expected_at = await self._expected_offsets(
            {(b.topic, b.partition): b.state.next_offset for b in loaded}
        )
        for topic, partition, msgs, base, table, key, state in loaded:
            expected = expected_at[(topic, partition)]
            raw, gaps = await self._in_sequence(
                expected, topic, partition, [raw_message(m) for m in msgs]
            )
            await bulk.skip_over(consumer, TP(topic, partition), gaps)
            if not raw:
                # Re-deliveries only: still ours, still expecting the same offset.
                self.tails.processed((topic, partition), expected, time.monotonic())
                continue
            state, out = process_partition(
                state,
                raw,
                self.directory.sites,
                base_topic=base,
                topic=topic,
                partition=partition,
                limits=limits,
                lateness_s=opts.lateness_s,
                consumer=opts.consumer_name,
            )
            new_states.append((msgs[-1], table, key, state))
            self.tails.processed((topic, partition), state.next_offset, time.monotonic())
            self.stats.accepted[base] += out.accepted
            self.stats.rejected[base] += sum(out.rejected.values())
            self.stats.readings += out.readings
            self.stats.partials += len(out.partials)
            self.stats.alerts += len(out.alerts)
            metrics.count_consumed(opts.consumer_name, base, len(msgs), out.readings)
            metrics.count_deadletters(base, out.rejected)
            metrics.count_decisions(alerts=out.alerts)
            for letter in out.letters:
                sent.append(await self._send(DEADLETTER, base.encode(), deadletter.encode(letter)))
            for p in out.partials:
                sent.append(
                    await self._send(PARTIAL_TOPIC, p.site_id.encode(), msgspec.json.encode(p))
                )
            for site_id, item in out.site_inputs:
                sent.append(await self._send_input(site_id, item))
            for a in out.alerts:
                enc_a = msgspec.json.encode(a)
                sent.append(await self._send("alerts.v1", a.site_id.encode(), enc_a))
        await self._delivered(sent)
        self._last_batch_s = time.monotonic()
        for msg, table, key, state in new_states:
            with acting_for(self._event(msg)):
                self._save(table, key, state)
        # Committable only now that the states they went into are saved.
        bulk.ack(consumer, (m for b in loaded for m in b.messages))

    def _event(self, message: Message) -> EventT[bytes]:
        """A faust Event for ``message``: tables key their writes by the current event."""
        return faust.Event(self.app, message.key, message.value, message.headers, message)

    async def _delivered(self, sent: Sequence[Awaitable[Any]]) -> None:
        """Wait until the broker has acknowledged every message in ``sent``.

        State is saved only after what it produced is delivered: a state that is ahead of
        its output (the changelog says a second closed, its SitePower never reached the
        broker) loses that output for good on a crash, while output ahead of state is
        only re-sent after a restart, and every consumer is idempotent on it (found by the
        fault suite: one second missing from ``site_power`` after a SIGKILL).
        """
        if sent:
            await asyncio.gather(*sent)

    async def _grid(self, stream: StreamT[bytes]) -> AsyncIterator[None]:
        async for events in cast(faust.Stream[bytes], stream).take_events(
            1000, within=self.options.batch_within_s
        ):
            limits = self.limits()
            for topic, n in Counter(ev.message.topic for ev in events).items():
                metrics.count_consumed(
                    self.options.consumer_name, base_name(topic, self.namespace), n
                )
            for ev in events:
                base = base_name(ev.message.topic, self.namespace)
                decoded = CONTRACTS[base].decode(ev.message.value, limits)
                if isinstance(decoded, Rejection):
                    msg = ev.message
                    await self._dead_letter(
                        msg.topic, msg.partition, raw_message(msg), base, decoded
                    )
                    continue
                self.stats.accepted[base] += 1
                configs = {k: e.config for k, e in self.directory.sites.items()}
                for site_id, item in grid_targets(decoded, configs):
                    await self._send_input(site_id, item)
            yield None

    async def _stage2(self, stream: StreamT[bytes]) -> AsyncIterator[None]:
        opts = self.options
        partial_contract = CONTRACTS[PARTIAL_TOPIC]
        async for events in cast(faust.Stream[bytes], stream).take_events(
            opts.batch_max, within=opts.batch_within_s
        ):
            limits = self.limits()
            inputs_topic = self.site_inputs.get_topic_name()
            for topic, n in Counter(ev.message.topic for ev in events).items():
                consumed = "site-inputs" if topic == inputs_topic else PARTIAL_TOPIC
                metrics.count_consumed(opts.consumer_name, consumed, n)
            by_site: dict[str, list[tuple[EventT[bytes], Stage2Item]]] = {}
            letters: list[Awaitable[Any]] = []
            lined, positions = await self._stage2_in_sequence(events)
            for ev, topic, partition, msg in lined:
                base = PARTIAL_TOPIC if topic != inputs_topic else None
                item: Stage2Item | Rejection
                if base is not None:
                    item = partial_contract.decode(msg.value, limits)
                    site_id = item.site_id if isinstance(item, SitePowerPartial) else ""
                else:
                    site_id = (msg.key or b"").decode(errors="replace")
                    try:
                        item = decode_input(msg.value or b"")
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        item = Rejection("schema", f"internal site input: {exc}")
                if not isinstance(item, Rejection) and site_id not in self.directory.sites:
                    item = Rejection("unknown_site", f"site_id {site_id!r} has no config")
                if isinstance(item, Rejection):
                    kind = base or "site-inputs"
                    letters.append(await self._dead_letter(topic, partition, msg, kind, item))
                    continue
                by_site.setdefault(site_id, []).append((ev, item))
            now = time.time()
            paused = self._last_stage2_s is not None and now - self._last_stage2_s > PAUSE_S
            self._last_stage2_s = now
            for site_id, pairs in by_site.items():
                resumed = paused or site_id not in self._running_sites
                self._running_sites.add(site_id)
                await self._run_site(site_id, pairs, now, resumed=resumed)
            await self._delivered(letters)
            for ev, key, next_offset in positions:
                with acting_for(ev):
                    self.stage2_offsets[key] = str(next_offset).encode()
            yield None

    async def _stage2_in_sequence(
        self, events: Sequence[EventT[bytes]]
    ) -> tuple[
        list[tuple[EventT[bytes], str, int, RawMessage]], list[tuple[EventT[bytes], bytes, int]]
    ]:
        """The batch in arrival order, each partition lined up with stage 2's next offset
        (``_in_sequence``), and per partition (last event, table key, next offset)."""
        kept: dict[tuple[str, int], list[RawMessage]] = {}
        positions: list[tuple[EventT[bytes], bytes, int]] = []
        for (topic, partition), evs in by_partition(events).items():
            key = f"{topic}:{partition}".encode()
            with acting_for(evs[-1]):
                stored = self.stage2_offsets.get(key)
            raw = [raw_message(e.message) for e in evs]
            expected = int(stored) if stored is not None else None
            # Stage 2's offsets live in a table of their own, saved apart from the site
            # states: re-deliveries are processed again (stage 2 is idempotent on them),
            # only skipped offsets are read back.
            msgs, _gaps = await self._in_sequence(
                expected, topic, partition, raw, drop_redelivered=False
            )
            kept[(topic, partition)] = msgs
            if msgs:
                next_offset = max(expected or 0, msgs[-1].offset + 1)
                positions.append((evs[-1], key, next_offset))
        lined: list[tuple[EventT[bytes], str, int, RawMessage]] = []
        at = dict.fromkeys(kept, 0)
        for ev in events:
            tp = (ev.message.topic, ev.message.partition)
            msgs, i = kept[tp], at[tp]
            # Read-back messages sit in front of the first delivered one still wanted.
            while i < len(msgs) and msgs[i].offset <= ev.message.offset:
                lined.append((ev, tp[0], tp[1], msgs[i]))
                i += 1
            at[tp] = i
        return lined, positions

    async def _run_site(
        self,
        site_id: str,
        pairs: Sequence[tuple[EventT[bytes], Stage2Item]],
        now: float,
        *,
        resumed: bool = False,
    ) -> None:
        """Run stage 2 for one site; ``resumed``: the first batch since this worker started,
        got the site back, or was not running (see ``refresh_liveness``)."""
        entry = self.directory.sites[site_id]
        key = site_id.encode()
        t = self.tables
        last = pairs[-1][0]
        with acting_for(last):
            states = SiteStates(
                combine=self._load(t["combine"], key, CombineState, CombineState()),
                surplus=self._load(t["surplus"], key, SurplusState, SurplusState(site_id=site_id)),
                controller=self._load(
                    t["controller"], key, ControllerState, ControllerState(site_id=site_id)
                ),
                alerts=self._load(t["alerts"], key, AlertState, AlertState(site_id=site_id)),
            )
        if resumed:
            refresh_liveness(states.combine, now)
        clock = self._clocks.setdefault(site_id, TickClock())
        restater = self._restaters.get(site_id)
        if restater is None or restater.index is not entry.index:
            restater = self._restaters[site_id] = SiteRestater(
                index=entry.index,
                combine=self.stage2_config.combine,
                memory_s=self.options.restate_memory_s,
            )
        states, out = process_site(
            states,
            [item for _, item in pairs],
            entry,
            now_s=now,
            config=self.stage2_config,
            clock=clock,
            restater=restater,
        )
        st = self.stats
        st.powers += len(out.powers)
        st.surplus += len(out.surplus)
        st.commands += len(out.commands)
        st.curtailments += len(out.curtailments)
        st.alerts += len(out.alerts)
        st.restated += len(out.restatements)
        st.unrestated_readings += out.unrestated_readings
        if out.unrestated_readings:
            log.warning(
                "site %s: %d late readings beyond the restater's memory (seconds from %s); "
                "counted late, not restated",
                site_id,
                out.unrestated_readings,
                restater.first_s,
            )
        metrics.count_decisions(
            powers=out.powers,
            surplus=out.surplus,
            commands=out.commands,
            curtailments=out.curtailments,
            alerts=out.alerts,
        )
        enc = msgspec.json.encode
        sent: list[Awaitable[Any]] = []
        for p in out.powers:
            sent.append(await self._send("site.power.v1", key, enc(p)))
        for s in out.surplus:
            sent.append(await self._send("surplus.events.v1", key, enc(s)))
        for c in out.commands:
            for part in split_command(c, self.options.max_miners_per_command):
                sent.append(await self._send("miners.commands.v1", key, enc(part)))
        for e in out.curtailments:
            sent.append(await self._send("curtailment.events.v1", key, enc(e)))
        for a in out.alerts:
            sent.append(await self._send("alerts.v1", key, enc(a)))
        for r in out.restatements:
            sent.append(await self._send(RESTATED_TOPIC, key, enc(r)))
        await self._delivered(sent)
        with acting_for(last):
            self._save(t["combine"], key, states.combine)
            self._save(t["surplus"], key, states.surplus)
            self._save(t["controller"], key, states.controller)
            self._save(t["alerts"], key, states.alerts)

    # ------------------------------------------------------------------ timer

    def owns_grid(self) -> bool:
        """True on the worker that reads the grid topics (it sends the ticks)."""
        tp = TP(full_name(GRID_INPUT_TOPICS[0], self.namespace), 0)
        return tp in self.app.assignor.assigned_actives()

    async def _watch_tails(self) -> None:
        """Seek back partitions whose last frames faust fetched but never delivered (see
        ``streams.faust_runtime.tail_watch``)."""
        consumer = self.app.consumer
        if self.app.rebalancing or not getattr(consumer, "flow_active", True):
            return
        await self._watch_undelivered(consumer)
        highwaters: dict[tuple[str, int], int | None] = {}
        for key in self.tails.watched():
            try:
                highwaters[key] = consumer.highwater(TP(*key))
            except Exception:  # noqa: BLE001 - revoked meanwhile: the new owner watches it
                continue
        now = time.monotonic()
        busy = now - self._last_batch_s < self.tails.stall_s
        for (topic, partition), offset in self.tails.due(highwaters, now, busy=busy):
            log.warning(
                "%s:%d: offsets %d..%d are on the broker but were not delivered for %.0f s; "
                "seeking back to %d",
                topic,
                partition,
                offset,
                (highwaters[(topic, partition)] or 0) - 1,
                self.tails.busy_stall_s if busy else self.tails.stall_s,
                offset,
            )
            await consumer.seek(TP(topic, partition), offset)

    async def _watch_undelivered(self, consumer: Any) -> None:
        """Watch this worker's telemetry partitions that delivered nothing since the last
        rebalance, once faust has fetched from them, from the offset stage 1 expects."""
        telemetry = set(self.telemetry.topics)
        mine = [
            (tp.topic, tp.partition)
            for tp in self.app.assignor.assigned_actives()
            if tp.topic in telemetry
        ]
        next_offsets: dict[tuple[str, int], int | None] = {}
        for topic, partition in self.tails.unwatched(mine):
            try:
                if consumer.highwater(TP(topic, partition)) is None:
                    continue  # not fetched yet: nothing can have been dropped
            except Exception:  # noqa: BLE001 - revoked meanwhile: the new owner watches it
                continue
            _base, table, key = self._stage1_slot(topic, partition)
            state = self._load(table, key, Stage1State, Stage1State())
            next_offsets[(topic, partition)] = state.next_offset
        expected = await self._expected_offsets(next_offsets)
        now = time.monotonic()
        for tp, offset in expected.items():
            self.tails.assigned(tp, offset, now)

    async def _tick(self) -> None:
        self.directory.poll()
        if not self.owns_grid():
            return
        # Sent in every mode: with --tick off the controller ignores it, but stage 2 still
        # re-evaluates which seconds can close (the startup hold and idle partitions are
        # judged on wall clock), so a backlog followed by silence is not held forever.
        now = time.time()
        for site_id in sorted(self.directory.sites):
            await self._send_input(site_id, TickIn(wall_s=now))


def make_app(settings: Settings, options: AgentOptions | None = None) -> SpillwayAgents:
    """The agents of one worker; call ``prepare()`` then run ``.app`` (see ``run_worker``)."""
    return SpillwayAgents(settings, options or AgentOptions())


def run_worker(
    settings: Settings, options: AgentOptions | None = None, *, loglevel: str = "warn"
) -> None:
    """Run one worker until it is stopped (SIGINT/SIGTERM); never returns normally."""
    tune_for_throughput()
    agents = make_app(settings, options)
    agents.prepare()
    port = agents.options.metrics_port
    if port is not None:
        # A daemon thread: it dies with the worker and needs no shutdown of its own.
        metrics.start_metrics_server(port)
        log.info("metrics on http://127.0.0.1:%d/metrics", port)
    worker = faust.Worker(agents.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # faust's terminal spinner puts the root logger at DEBUG so that it sees every record:
    # every debug call in faust and aiokafka then builds a LogRecord (3% of a busy worker)
    # and escape codes land in the log. The level asked for is the root's level.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    finally:
        agents.directory.close()
