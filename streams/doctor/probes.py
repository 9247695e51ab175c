"""The doctor's probes: broker, topics, consumer lag and dead letters read from Kafka, then
judged by ``streams.doctor.judgements``."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from infra.admin import open_admin
from infra.provision import describe_existing, plan
from infra.topics import DEADLETTER, TOPICS, full_name
from streams.doctor.judgements import (
    MAX_LETTERS,
    READ_BUDGET_S,
    WINDOW_S,
    Check,
    Report,
    TopicPartitionKey,
    group_lags,
    is_spillway_group,
    judge_broker,
    judge_lag,
    judge_letters,
    judge_marts,
    judge_topics,
    scan_marts,
    skipped,
    tally_letters,
)
from streams.marts.publish import load_manifest
from streams.settings import Settings


def _admin(settings: Settings) -> Any:
    return open_admin(settings, "spillway-doctor", request_timeout_s=10.0)


def probe_topics(settings: Settings, admin: Any) -> Check:
    names = [full_name(t.name, settings.topic_namespace) for t in TOPICS]
    todo = plan(TOPICS, describe_existing(admin, names), settings.topic_namespace)
    return judge_topics(todo, len(TOPICS))


def probe_lag(settings: Settings, admin: Any) -> Check:
    from kafka.admin import OffsetSpec

    ours = {full_name(t.name, settings.topic_namespace) for t in TOPICS}
    ns = settings.topic_namespace
    groups = [g["group_id"] for g in admin.list_groups() if is_spillway_group(g["group_id"], ns)]
    committed: dict[str, dict[TopicPartitionKey, int]] = {}
    if groups:
        for group, offsets in admin.list_group_offsets({g: None for g in groups}).items():
            mine = {
                (tp.topic, tp.partition): o.offset for tp, o in offsets.items() if tp.topic in ours
            }
            if mine:
                committed[group] = mine
    wanted = {tp for offsets in committed.values() for tp in offsets}
    end: dict[TopicPartitionKey, int] = {}
    if wanted:
        from kafka import TopicPartition

        got = admin.list_partition_offsets(
            {TopicPartition(t, p): OffsetSpec.LATEST for t, p in wanted}
        )
        end = {(tp.topic, tp.partition): o.offset for tp, o in got.items()}
    return judge_lag(group_lags(committed, end), settings.doctor_max_lag_messages)


def probe_letters(settings: Settings, admin: Any, window_s: float = WINDOW_S) -> Check:
    """Read the dead-letter envelopes of the window (at most ``MAX_LETTERS``, the newest)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import OffsetSpec

    topic = full_name(DEADLETTER, settings.topic_namespace)
    described = admin.describe_topics([topic])
    if any(d.get("error_code") for d in described):
        return skipped("deadletter", f"topic {topic} does not exist")
    tps = [TopicPartition(topic, p["partition_index"]) for d in described for p in d["partitions"]]
    since_ms = int((time.time() - window_s) * 1000)
    starts = admin.list_partition_offsets({tp: since_ms for tp in tps})
    ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
    spans: dict[Any, tuple[int, int]] = {}
    for tp in tps:
        stop = ends[tp].offset
        first = starts[tp].offset
        if first is None or first < 0 or first >= stop:
            continue  # nothing stamped inside the window
        spans[tp] = (first, stop)
    total = sum(b - a for a, b in spans.values())
    if total == 0:
        return judge_letters(Counter(), 0, window_s, False)
    budget = MAX_LETTERS
    records: list[tuple[int, bytes | None]] = []
    consumer = KafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        client_id="spillway-doctor",
        **settings.kafka_python_config(),
    )
    try:
        consumer.assign(list(spans))
        for tp, (first, stop) in spans.items():
            consumer.seek(tp, max(first, stop - budget // len(spans)))
        todo = {tp: stop for tp, (_, stop) in spans.items()}
        deadline = time.monotonic() + READ_BUDGET_S
        while todo and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                records += [(m.timestamp, m.value) for m in msgs if m.offset < todo.get(tp, 0)]
                if msgs and msgs[-1].offset + 1 >= todo.get(tp, 0):
                    todo.pop(tp, None)
    finally:
        consumer.close()
    counts = tally_letters(records, since_ms, settings.topic_namespace)
    if len(records) == total:  # all read: drop those stamped before the window after all
        return judge_letters(counts, sum(counts.values()), window_s, False)
    return judge_letters(counts, total, window_s, True)


def run_checks(settings: Settings, window_s: float = WINDOW_S) -> Report:
    from infra.broker import answers

    bootstrap = settings.kafka_bootstrap_servers
    protocol = settings.kafka_security_protocol
    checks = [judge_broker(bootstrap, answers(bootstrap, 3.0, settings), protocol)]
    names = ("topics", "lag", "deadletter")
    if checks[0].status != "ok":
        checks += [skipped(n, "the broker is unreachable") for n in names]
    else:
        admin = _admin(settings)
        try:
            checks.append(_guarded("topics", lambda: probe_topics(settings, admin)))
            checks.append(_guarded("lag", lambda: probe_lag(settings, admin)))
            checks.append(_guarded("deadletter", lambda: probe_letters(settings, admin, window_s)))
        finally:
            admin.close()
    marts = settings.marts_dir
    parquet, gate = scan_marts(marts)
    checks.append(judge_marts(marts, parquet, gate, time.time(), load_manifest(marts)))
    return Report(bootstrap, settings.topic_namespace, checks)


def _guarded(name: str, probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - a failing probe is a finding, not a crash
        return Check(name, "fail", f"could not check: {type(exc).__name__}: {exc}")


# --- command -------------------------------------------------------------------------------
