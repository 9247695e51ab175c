"""Exactly-once sink from Kafka into DuckDB.

Each batch of messages becomes one DuckDB transaction holding the table rows AND the next
Kafka offset of every partition in the batch (``store.write_batch``). On partition
assignment the consumer seeks to the offsets stored in DuckDB, never to Kafka's committed
offsets, so after a crash or ``kill -9`` the sink resumes exactly after the last batch that
reached the database: nothing lost, nothing counted twice. Kafka offsets are also committed
(asynchronously, after the database) only so that lag monitors can see progress.

Behind that, keys make a replay harmless: events and seconds are upserted on their natural
keys, site configs on (site, updated_s, partition, offset), and telemetry frames at or
below their source's watermark are dropped (``frames.accept_frames``).

Late readings restate: a second restated on ``site.power.restated.v1``
(``schemas.restatement``) replaces the stored second in the same transaction as its offset,
with its before and after in ``power_restatements`` (``store.apply_restatements``); the
publication then rebuilds the day and records what changed in ``mart_revisions``. A
restatement made more than ``restatement_horizon_s`` after its second is dead-lettered
(kept with its bytes and the reason, not applied).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from infra.topics import base_name, full_name
from schemas.restatement import RESTATED_TOPIC, SitePowerRestatement, check_restatement
from schemas.validation import Rejection
from streams.gc_tuning import throughput_gc
from streams.io.kafka import TopicProducer, check, make_consumer
from streams.io.validated import Validator
from streams.marts.actuation_mart import OUTCOMES_TOPIC, outcomes_writer
from streams.marts.configs import SITE_CONFIG_TOPIC, ConfigMessage, site_config_frame
from streams.marts.frames import accept_frames, build_frames
from streams.marts.publish import PublishResult
from streams.marts.revisions import restated_rows
from streams.marts.store import Batch, load_marks, load_offsets, open_store, write_batch
from streams.marts.tables import SINK_TOPICS as TABLE_TOPICS
from streams.observe import metrics
from streams.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_GROUP = "spillway-mart-sink"
SINK_TOPICS: tuple[str, ...] = (*TABLE_TOPICS, RESTATED_TOPIC, OUTCOMES_TOPIC)
"""Every topic the sink reads: one per table, the restatements of site power, and the
actuation outcomes (compliance mart)."""


def default_group(settings: Settings) -> str:
    """The sink's group: one per topic namespace (a static member keeps its assignment across
    restarts, so one group shared by namespaces would hand a new sink an old namespace's
    partitions). The namespace goes last: the sink's ACL is a prefix on ``DEFAULT_GROUP``."""
    ns = settings.topic_namespace
    return f"{DEFAULT_GROUP}.{ns}" if ns else DEFAULT_GROUP


SINK_DB = "sink.duckdb"
SINK_MAX_AGE_S = 3650 * 86_400.0
"""The sink stores whatever Kafka still retains (grid topics keep 400 days): a sink catching
up after an outage must not dead-letter readings for being old, and an age limit tied to
the wall clock would let a restarted sink reject what a clean run accepted."""


def sink_db_path(settings: Settings) -> Path:
    return settings.marts_dir / SINK_DB


MAX_BATCH_BYTES = 16 * 1024 * 1024
"""Bytes of messages written per transaction: with frames of hundreds of readings, 20,000
messages would be millions of rows in memory at once."""


def byte_chunks(msgs: Sequence[Message], max_bytes: int) -> list[Sequence[Message]]:
    """``msgs`` in order, cut into runs of at most ``max_bytes`` of values (at least one
    message per run). Each run is written with its own offsets, so order is all it needs."""
    chunks: list[Sequence[Message]] = []
    start, size = 0, 0
    for i, m in enumerate(msgs):
        n = len(m.value() or b"")
        if i > start and size + n > max_bytes:
            chunks.append(msgs[start:i])
            start, size = i, 0
        size += n
    chunks.append(msgs[start:])
    return chunks


@dataclass
class SinkStats:
    messages: int = 0
    batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    stale_frames: int = 0
    restated: int = 0
    """Seconds of site power replaced by a restatement (late readings)."""
    publications: int = 0
    write_s: float = 0.0
    """Seconds inside DuckDB transactions."""
    started: float = field(default_factory=time.monotonic)
    first_batch_at: float | None = None
    """Monotonic time the first batch was polled (after the group join)."""
    last_batch_at: float | None = None
    """Monotonic time the last batch was committed."""

    @property
    def busy_s(self) -> float:
        """From the first poll that returned messages to the last commit."""
        if self.first_batch_at is None or self.last_batch_at is None:
            return 0.0
        return self.last_batch_at - self.first_batch_at

    def line(self) -> str:
        total = sum(self.rows.values())
        rate = self.messages / self.busy_s if self.busy_s > 0 else 0.0
        return (
            f"{self.messages} messages in {self.batches} batches, {total} rows "
            f"({rate:,.0f} msg/s while busy), {self.rejected} dead-lettered, "
            f"{self.stale_frames} stale frames, {self.restated} seconds restated, "
            f"{self.publications} publications"
        )


def offsets_of(msgs: Sequence[Message]) -> dict[tuple[str, int], int]:
    """Next offset per (topic, partition): one past the highest consumed."""
    out: dict[tuple[str, int], int] = {}
    for m in msgs:
        key = (m.topic() or "", m.partition() or 0)
        nxt = (m.offset() or 0) + 1
        if nxt > out.get(key, -1):
            out[key] = nxt
    return out


class CountingValidator(Validator):
    """A ``Validator`` that also counts every dead letter in the Prometheus metrics."""

    def reject(self, msg: Message, base: str, rejection: Rejection) -> None:
        super().reject(msg, base, rejection)
        metrics.count_deadletters(base, {rejection.kind: 1})


def count_batch(consumer: str, msgs: Sequence[Message], namespace: str) -> None:
    """Count one consumed batch in ``MESSAGES_IN`` (one label update per topic)."""
    for topic, n in Counter(m.topic() or "" for m in msgs).items():
        metrics.count_consumed(consumer, base_name(topic, namespace), n)


def note_publication(result: object, at_s: float) -> None:
    """Set the publication gauges when ``result`` is a new generation (not skipped)."""
    if isinstance(result, PublishResult) and not result.skipped:
        metrics.record_publication(result.generation, at_s)


class MartSink:
    """Consumer + DuckDB writer. ``step()`` handles one poll; ``run_sink`` loops it."""

    def __init__(
        self,
        settings: Settings,
        *,
        db_path: Path | None = None,
        group_id: str | None = None,
        topics: Sequence[str] = SINK_TOPICS,
        batch_size: int = 20_000,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        poll_timeout_s: float = 0.5,
        consumer_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.db_path = db_path or sink_db_path(settings)
        self.con = open_store(self.db_path, settings.sink_memory_mb)
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.poll_timeout_s = poll_timeout_s
        self.producer = TopicProducer(settings)
        lenient = settings.model_copy(update={"max_age_s": max(settings.max_age_s, SINK_MAX_AGE_S)})
        group_id = group_id or default_group(settings)
        self.group_id = group_id
        self.validator = CountingValidator(lenient, self.producer, group_id)
        self.marks = load_marks(self.con)
        self.positions: dict[tuple[str, int], int] = {}
        self.stats = SinkStats()
        # Static membership: a sink restarted after a crash (same group, same instance id)
        # gets its partitions back at once instead of waiting out the dead member's session.
        # The instance id names the database too: two sinks writing two databases in one
        # group are two members, not one fencing the other.
        writer = hashlib.sha256(str(self.db_path.resolve()).encode()).hexdigest()[:12]
        overrides = {"group.instance.id": f"{group_id}-{writer}", **(consumer_overrides or {})}
        self.consumer: Consumer = make_consumer(settings, group_id, **overrides)
        names = [full_name(t, settings.topic_namespace) for t in topics]
        self.consumer.subscribe(names, on_assign=self._on_assign)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Seek every assigned partition to the offset stored with the rows."""
        stored = load_offsets(self.con)
        for p in partitions:
            p.offset = stored.get((p.topic, p.partition), OFFSET_BEGINNING)
            self.positions[(p.topic, p.partition)] = max(p.offset, 0)
        consumer.assign(partitions)

    @property
    def assigned(self) -> bool:
        return bool(self.positions)

    def behind(self, timeout_s: float = 5.0) -> int:
        """Messages between what is stored and the end of the assigned partitions now (asked
        of the broker: one round trip a partition); 0 once the sink has caught up."""
        lag = 0
        for (topic, part), pos in self.positions.items():
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, part), timeout=timeout_s
            )
            lag += max(0, high - max(pos, low))
        return lag

    def step(self, before_commit: Callable[[], None] | None = None) -> int:
        """Poll once and write what came; returns the number of messages consumed."""
        polled = time.monotonic()
        raw = self.consumer.consume(self.batch_size, timeout=self.poll_timeout_s)
        if raw and self.stats.first_batch_at is None:
            self.stats.first_batch_at = polled
        msgs = [m for m in raw if m.error() is None or check(m)]
        # Third line of defence: never apply an offset below what the database holds.
        msgs = [
            m
            for m in msgs
            if (m.offset() or 0) >= self.positions.get((m.topic() or "", m.partition() or 0), 0)
        ]
        if not msgs:
            return 0
        for chunk in byte_chunks(msgs, self.max_batch_bytes):
            self.handle(chunk, before_commit)
        return len(msgs)

    def handle(
        self, msgs: Sequence[Message], before_commit: Callable[[], None] | None = None
    ) -> None:
        rejected_before = sum(self.validator.tally.rejected.values())
        ns = self.settings.topic_namespace
        configs = [m for m in msgs if base_name(m.topic() or "", ns) == SITE_CONFIG_TOPIC]
        restated = [m for m in msgs if base_name(m.topic() or "", ns) == RESTATED_TOPIC]
        decoded = self.validator.decode_batch(
            [
                m
                for m in msgs
                if base_name(m.topic() or "", ns)
                not in (SITE_CONFIG_TOPIC, RESTATED_TOPIC, OUTCOMES_TOPIC)
            ]
        )
        # Actuation outcomes: the compliance mart.
        outcomes = [m for m in msgs if base_name(m.topic() or "", ns) == OUTCOMES_TOPIC]
        if outcomes:
            before_commit = outcomes_writer(
                self.con, self.validator.decode_batch(outcomes), before_commit
            )
        accepted = accept_frames(decoded, self.marks)
        frames = build_frames(accepted.items)
        if configs:
            positioned = self._decode_configs(configs)
            if positioned:
                frames["site_configs"] = site_config_frame(positioned)
        offsets = offsets_of(msgs)
        batch = Batch(
            frames=frames,
            offsets=offsets,
            marks=accepted.marks,
            frames_seen=accepted.frames,
            stale=accepted.stale,
            restated=self._decode_restatements(restated) if restated else None,
        )
        rejected = sum(self.validator.tally.rejected.values()) - rejected_before
        if rejected:
            # Dead letters first: a crash after this repeats them (at least once) instead of
            # losing them once their offsets are stored.
            self.producer.flush()
        t0 = time.perf_counter()
        write_batch(self.con, batch, before_commit)
        self.stats.write_s += time.perf_counter() - t0
        self.marks.update(accepted.marks)
        self.positions.update(offsets)
        self.consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=True
        )
        self.stats.messages += len(msgs)
        count_batch(self.group_id, msgs, ns)
        self.stats.batches += 1
        self.stats.last_batch_at = time.monotonic()
        self.stats.rejected += rejected
        self.stats.stale_frames += sum(accepted.stale.values())
        self.stats.restated += batch.restated.height if batch.restated is not None else 0
        for name, f in frames.items():
            self.stats.rows[name] += f.height

    def _decode_restatements(self, msgs: Sequence[Message]) -> pl.DataFrame:
        """Restated seconds with where each was read; a restatement beyond the horizon is
        dead-lettered (original bytes and why), not applied."""
        horizon = self.settings.restatement_horizon_s
        kept: list[tuple[Message, SitePowerRestatement]] = []
        for m in msgs:
            for _, r in self.validator.decode_batch([m]):
                why = check_restatement(r, horizon)
                if why is None:
                    kept.append((m, r))
                else:
                    self.validator.reject(m, RESTATED_TOPIC, Rejection("validation", why))
        rows = restated_rows([r.power for _, r in kept])
        where = pl.DataFrame(
            [
                (
                    r.site_id,
                    r.ts_s,
                    m.topic() or "",
                    m.partition() or 0,
                    m.offset() or 0,
                    r.late_readings,
                )
                for m, r in kept
            ],
            schema={
                "site_id": pl.String,
                "ts_s": pl.Int64,
                "_topic": pl.String,
                "_partition": pl.Int64,
                "_offset": pl.Int64,
                "_late_readings": pl.Int64,
            },
            orient="row",
        )
        return rows.join(where.unique(["site_id", "ts_s"], keep="last"), on=["site_id", "ts_s"])

    def _decode_configs(self, msgs: Sequence[Message]) -> list[ConfigMessage]:
        """Site configs with their Kafka position (few: one message at a time)."""
        out: list[ConfigMessage] = []
        for m in msgs:
            for _, config in self.validator.decode_batch([m]):
                _, stamp = m.timestamp()
                out.append(
                    ConfigMessage(
                        config,
                        m.partition() or 0,
                        m.offset() or 0,
                        stamp / 1000.0 if stamp > 0 else 0.0,
                    )
                )
        return out

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.producer.producer.flush(10)
            self.con.close()


def _caught_up(sink: MartSink) -> bool:
    """``--once`` ends when the sink is quiet *and* has stored everything that was there:
    quiet alone ended runs whose first fetch came after ``idle_s`` with nothing stored."""
    try:
        return sink.behind() == 0
    except KafkaException as exc:
        log.warning("sink --once: cannot ask the broker how far behind it is (%s); stopping", exc)
        return True


def run_sink(
    settings: Settings,
    stop_event: threading.Event,
    *,
    db_path: Path | None = None,
    group_id: str | None = None,
    topics: Sequence[str] = SINK_TOPICS,
    batch_size: int = 20_000,
    once: bool = False,
    idle_s: float = 5.0,
    max_s: float | None = None,
    publish_every_s: float | None = 60.0,
    publisher: Callable[[duckdb.DuckDBPyConnection], object] | None = None,
    progress: Callable[[str], None] | None = None,
    progress_every_s: float = 5.0,
    consumer_overrides: dict[str, Any] | None = None,
) -> SinkStats:
    """Run the sink until ``stop_event`` is set (or, with ``once``, until nothing arrives for
    ``idle_s`` after partitions are assigned). ``publisher(con)`` runs every
    ``publish_every_s`` seconds between batches and once at the end (None: never)."""
    sink = MartSink(
        settings,
        db_path=db_path,
        group_id=group_id,
        topics=topics,
        batch_size=batch_size,
        consumer_overrides=consumer_overrides,
    )
    stats = sink.stats
    last_msg: float | None = None
    last_pub = last_note = time.monotonic()
    try:
        with throughput_gc():
            while not stop_event.is_set():
                now = time.monotonic()
                if max_s is not None and now - stats.started >= max_s:
                    break
                n = sink.step()
                now = time.monotonic()
                if n or (last_msg is None and sink.assigned):
                    last_msg = now
                if once and last_msg is not None and now - last_msg >= idle_s:
                    if _caught_up(sink):
                        break
                    last_msg = now  # quiet, not done: the next fetch is late (a busy broker)
                if (
                    publisher is not None
                    and publish_every_s is not None
                    and now - last_pub >= publish_every_s
                ):
                    note_publication(publisher(sink.con), time.time())
                    stats.publications += 1
                    last_pub = now
                if progress is not None and now - last_note >= progress_every_s:
                    progress(stats.line())
                    last_note = now
            if publisher is not None:
                note_publication(publisher(sink.con), time.time())
                stats.publications += 1
            if progress is not None:
                progress(stats.line())
    finally:
        sink.close()
    return stats
