"""``spillway doctor``: what is wrong with this Spillway deployment, in plain words.

Checks, in order: the broker answers; every declared topic exists with its declared
partitions (``infra.provision.plan`` on what the cluster reports); the lag of Spillway's
consumer groups (names starting ``spillway``) on this namespace's topics; dead letters of
the last hour by source topic and kind; the last mart publication and its quality gate.
Exit code 0 when nothing failed, 1 otherwise; ``--json`` prints the same as data.

Each check is a pure ``judge_*`` function over what the probes read, so the wording and
the verdicts are tested without a broker; the ``probe_*`` functions only do I/O.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from infra.admin import open_admin
from infra.provision import Plan, describe_existing, plan
from infra.topics import DEADLETTER, TOPICS, full_name
from schemas.deadletter import DeadLetter
from streams.commands import Subparsers, add_parser
from streams.marts.publish import Manifest, load_manifest
from streams.settings import Settings, get_settings

Status = Literal["ok", "warn", "fail", "skip"]
GROUP_PREFIX = "spillway"
WINDOW_S = 3600.0
MAX_LETTERS = 10_000
"""Dead letters read for the breakdown; the total in the window comes from offsets."""
READ_BUDGET_S = 10.0

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    summary: str
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    bootstrap: str
    namespace: str
    checks: list[Check]

    @property
    def healthy(self) -> bool:
        return all(c.status in ("ok", "warn") for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "bootstrap": self.bootstrap,
            "namespace": self.namespace,
            "checks": [asdict(c) for c in self.checks],
        }

    def lines(self) -> list[str]:
        ns = self.namespace or "(none)"
        out = [f"spillway doctor: bootstrap {self.bootstrap}, topic namespace {ns}"]
        for c in self.checks:
            out.append(f"  {c.status.upper():5} {c.name:11} {c.summary}")
            out += [f"{'':19}- {d}" for d in c.details]
        problems = sum(c.status in ("fail", "skip") for c in self.checks)
        out.append("healthy" if self.healthy else f"NOT healthy: {problems} check(s) failed")
        return out


# --- pure judgements -----------------------------------------------------------------------


def judge_broker(bootstrap: str, answered: bool, protocol: str) -> Check:
    if answered:
        return Check("broker", "ok", f"reachable at {bootstrap} ({protocol})")
    return Check(
        "broker",
        "fail",
        f"no Kafka broker answers at {bootstrap} ({protocol})",
        [
            "start the local one with `spillway broker start`, or point "
            "KAFKA_BOOTSTRAP_SERVERS (and the SPILLWAY_KAFKA_* security settings) at yours"
        ],
    )


def skipped(name: str, why: str) -> Check:
    return Check(name, "skip", f"not checked: {why}")


def judge_topics(todo: Plan, declared: int) -> Check:
    """Missing topics and wrong partition counts fail; configuration drift only warns."""
    details = [f"missing {n} (declared with {s.partitions} partitions)" for n, s in todo.create]
    details += [f"{n} has {a} partitions, declared {b}" for n, a, b in todo.grow]
    details += todo.refused
    drift = [f"{n} config differs: {cfg}" for n, cfg in todo.reconfigure]
    data = {
        "declared": declared,
        "missing": [n for n, _ in todo.create],
        "partitions_short": [n for n, _, _ in todo.grow],
        "refused": list(todo.refused),
        "config_drift": [n for n, _ in todo.reconfigure],
    }
    if details:
        parts = [f"{len(todo.create)} of {declared} declared topics missing"] if todo.create else []
        if todo.grow or todo.refused:
            parts.append(f"{len(todo.grow) + len(todo.refused)} with other partition counts")
        hint = "run `spillway topics provision` to create or grow them"
        return Check("topics", "fail", f"{', '.join(parts)}; {hint}", details + drift, data)
    if drift:
        return Check(
            "topics",
            "warn",
            f"all {declared} topics present; {len(drift)} with other settings than declared",
            drift,
            data,
        )
    return Check(
        "topics", "ok", f"all {declared} declared topics present with their partitions", data=data
    )


def is_spillway_group(group: str, namespace: str = "") -> bool:
    """Spillway's groups start with ``spillway``; the agents put the namespace in front."""
    return group.startswith(GROUP_PREFIX) or (
        bool(namespace) and group.startswith(f"{namespace}.{GROUP_PREFIX}")
    )


def group_lags(
    committed: Mapping[str, Mapping[TopicPartitionKey, int]],
    end: Mapping[TopicPartitionKey, int],
) -> dict[str, int]:
    """Messages each group still has to read: sum over its partitions of end - committed."""
    out: dict[str, int] = {}
    for group, offsets in committed.items():
        lags = [max(end[tp] - off, 0) for tp, off in offsets.items() if tp in end and off >= 0]
        if lags:
            out[group] = sum(lags)
    return out


def judge_lag(lags: Mapping[str, int], max_lag: int) -> Check:
    if not lags:
        return Check(
            "lag",
            "ok",
            "no Spillway consumer group has committed offsets here yet",
            data={"groups": {}},
        )
    behind = {g: n for g, n in lags.items() if n > max_lag}
    details = [f"{g}: {n} messages behind" for g, n in sorted(lags.items(), key=lambda x: -x[1])]
    data = {"groups": dict(lags), "max_lag": max_lag}
    if behind:
        return Check(
            "lag",
            "fail",
            f"{len(behind)} of {len(lags)} consumer groups lag by more than {max_lag} messages "
            "(stopped or too slow)",
            details,
            data,
        )
    return Check(
        "lag", "ok", f"{len(lags)} consumer groups, total lag {sum(lags.values())}", details, data
    )


def tally_letters(
    records: Iterable[tuple[int, bytes | None]], since_ms: int, namespace: str = ""
) -> Counter[tuple[str, str]]:
    """(source topic, kind) -> count for envelopes stamped at or after ``since_ms``."""
    decoder = msgspec.json.Decoder(DeadLetter)
    prefix = f"{namespace}." if namespace else ""
    counts: Counter[tuple[str, str]] = Counter()
    for ts_ms, value in records:
        if ts_ms < since_ms:
            continue
        try:
            letter = decoder.decode(value or b"")
        except (msgspec.DecodeError, msgspec.ValidationError):
            counts[("?", "unreadable envelope")] += 1
            continue
        source = letter.source_topic
        counts[(source.removeprefix(prefix) if prefix else source, letter.kind)] += 1
    return counts


def judge_letters(
    counts: Counter[tuple[str, str]], total: int, window_s: float, truncated: bool
) -> Check:
    hours = window_s / 3600
    span = "the last hour" if hours == 1 else f"the last {hours:g} h"
    if total == 0:
        return Check("deadletter", "ok", f"no dead letters in {span}", data={"total": 0})
    details = [f"{src} / {kind}: {n}" for (src, kind), n in sorted(counts.items())]
    if truncated:
        details.append(f"breakdown of the latest {sum(counts.values())} of {total} only")
    data = {
        "total": total,
        "by_source_kind": [{"source": s, "kind": k, "count": n} for (s, k), n in counts.items()],
    }
    return Check(
        "deadletter",
        "fail",
        f"{total} message{'s' if total != 1 else ''} dead-lettered in {span}: "
        "data the contracts reject (details by source topic / kind)",
        details,
        data,
    )


_GATE_WORD = re.compile(r"\b(PASS|FAIL|BROKEN)\b")


def gate_verdict(text: str) -> str | None:
    """PASS, FAIL or BROKEN from a gate report (text first line, or JSON ``success``)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            raw = json.loads(stripped)
        except ValueError:
            return None
        ok = raw.get("success") if isinstance(raw, dict) else None
        return None if ok is None else ("PASS" if ok else "FAIL")
    first = stripped.splitlines()[0] if stripped else ""
    found = _GATE_WORD.search(first)
    return found.group(1) if found else None


def judge_marts(
    marts: Path,
    parquet: tuple[Path, float] | None,
    gate: tuple[Path, float, str | None] | None,
    now_s: float,
    manifest: Manifest | None = None,
) -> Check:
    """``manifest``: the latest publication's (its held partitions and provisional rows say
    more than the newest gate report, which may be a partition published provisionally)."""
    if parquet is None:
        return Check(
            "marts",
            "warn",
            f"no mart publication yet (no Parquet under {marts})",
            data={"last_publication_s": None},
        )
    path, mtime = parquet
    summary = f"last publication {_age(now_s - mtime)} ago ({path.name})"
    data: dict[str, Any] = {"last_publication_s": mtime, "file": str(path)}
    if manifest is not None and manifest.generation:
        return _judge_status(summary, data, manifest, now_s)
    if gate is None:
        return Check("marts", "warn", summary + "; no quality-gate report found", data=data)
    gpath, gmtime, verdict = gate
    data |= {"gate_report": str(gpath), "gate": verdict}
    when = f"{_age(now_s - gmtime)} ago"
    if verdict == "PASS":
        return Check(
            "marts", "ok", f"{summary}; latest quality gate passed ({when})", [str(gpath)], data
        )
    if verdict in ("FAIL", "BROKEN"):
        word = "failed" if verdict == "FAIL" else "could not run"
        return Check(
            "marts",
            "fail",
            f"{summary}; latest quality gate {word} ({when}): that partition is not published",
            [f"report: {gpath}"],
            data,
        )
    return Check(
        "marts", "warn", f"{summary}; cannot read the verdict of {gpath.name}", [str(gpath)], data
    )


def _judge_status(summary: str, data: dict[str, Any], m: Manifest, now_s: float) -> Check:
    """Held partitions fail the check, provisional rows warn, each listed with why."""
    held = [
        f"held {unit} for {_age(now_s - float(h['since_s']))}: {h['reason']} (report {h['report']})"
        for unit, h in sorted(m.held.items())
    ]
    rows = [
        f"provisional {p['mart']} {p['site_id']} {p['key_start_s']}: {p['reason']}"
        for p in m.provisional
    ]
    data |= {"generation": m.generation, "held": sorted(m.held), "provisional": len(rows)}
    details = held + rows[:10] + ([f"... {len(rows) - 10} more"] if len(rows) > 10 else [])
    if held:
        return Check(
            "marts",
            "fail",
            f"{summary}; {len(held)} partition(s) held back by their quality gate, "
            f"{len(rows)} row(s) provisional",
            details,
            data,
        )
    if rows:
        return Check(
            "marts", "warn", f"{summary}; {len(rows)} row(s) published provisional", details, data
        )
    return Check("marts", "ok", f"{summary}; every partition passed its quality gate", [], data)


def _age(seconds: float) -> str:
    s = max(seconds, 0.0)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


# --- probes (I/O) --------------------------------------------------------------------------


def newest(paths: Iterable[Path]) -> tuple[Path, float] | None:
    """The most recently modified of ``paths`` with its mtime."""
    best: tuple[Path, float] | None = None
    for p in paths:
        try:
            m = p.stat().st_mtime
        except OSError:
            continue  # replaced while we looked
        if best is None or m > best[1]:
            best = (p, m)
    return best


Newest = tuple[Path, float]
GateFound = tuple[Path, float, str | None]


def scan_marts(marts: Path) -> tuple[Newest | None, GateFound | None]:
    """Newest published Parquet file and newest gate report under ``marts`` (any layout)."""
    if not marts.is_dir():
        return None, None
    files = [p for p in marts.rglob("*") if p.is_file() and not p.name.startswith(".")]
    parquet = newest(p for p in files if p.suffix == ".parquet")
    reports = newest(
        p
        for p in files
        if p.suffix in (".txt", ".json", ".md", ".log")
        and ("_gates" in p.parts or "gate" in p.name.lower())
    )
    if reports is None:
        return parquet, None
    path, mtime = reports
    try:
        verdict = gate_verdict(path.read_text(errors="replace")[:65536])
    except OSError:
        verdict = None
    return parquet, (path, mtime, verdict)


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


def register(sub: Subparsers) -> None:
    parser = add_parser(
        sub, "doctor", "check the broker, topics, consumer lag, dead letters and marts"
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--window",
        type=float,
        default=WINDOW_S,
        metavar="SECONDS",
        help="dead letters counted over this many seconds (default 3600)",
    )
    parser.set_defaults(func=_doctor)


def effective_settings(settings: Settings) -> Settings:
    """On the local secured broker with no SASL user configured, check as its admin.

    The admin's password is read from the broker's 0600 credentials file, never from the
    command line or the environment.
    """
    from infra import security

    local = f"127.0.0.1:{settings.broker_port}"
    if not settings.broker_secure or settings.kafka_sasl_username is not None:
        return settings
    if settings.kafka_bootstrap_servers != local:
        return settings
    try:
        return security.client_settings(settings, security.ADMIN)
    except security.SecurityError:
        return settings  # not started yet: the broker check says it does not answer


def _doctor(args: argparse.Namespace) -> int:
    from streams.pipeline.last_run import reading_settings

    settings = reading_settings(get_settings())
    report = run_checks(effective_settings(settings), window_s=args.window)
    if args.json:
        print(json.dumps(report.as_json(), indent=1, default=str))
    else:
        print("\n".join(report.lines()))
    return 0 if report.healthy else 1
