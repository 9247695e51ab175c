"""The doctor's verdicts and wording: pure ``judge_*`` functions over what the probes read
(and the marts folder scan), tested without a broker."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from infra.provision import Plan
from schemas.deadletter import DeadLetter
from streams.marts.publish import Manifest

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
