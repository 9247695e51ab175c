"""The doctor's verdicts and wording from what the probes read (no broker)."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from infra.provision import Existing, plan
from infra.topics import TopicSpec
from schemas.validation import Rejection
from streams import deadletter
from streams.commands import doctor
from streams.doctor.judgements import (
    Check,
    Report,
    gate_verdict,
    group_lags,
    is_spillway_group,
    judge_broker,
    judge_lag,
    judge_letters,
    judge_marts,
    judge_topics,
    scan_marts,
    tally_letters,
)
from streams.marts.publish import Manifest

A = TopicSpec("grid.prices.v1", 2, "k", "p", retention_ms=1000)
B = TopicSpec("alerts.v1", 1, "k", "p", retention_ms=1000)
CFG = {"cleanup.policy": "delete", "retention.ms": "1000"}


def test_broker_verdicts_name_the_bootstrap() -> None:
    up = judge_broker("h:1", True, "SASL_SSL")
    down = judge_broker("h:1", False, "PLAINTEXT")
    assert (up.status, down.status) == ("ok", "fail")
    assert "h:1" in up.summary and "h:1" in down.summary
    assert "spillway broker start" in down.details[0]


@pytest.mark.parametrize(
    ("existing", "status", "missing", "words"),
    [
        ({"grid.prices.v1": Existing(2, CFG), "alerts.v1": Existing(1, CFG)}, "ok", [],
         "all 2 declared topics present"),
        ({"grid.prices.v1": Existing(2, CFG)}, "fail", ["alerts.v1"],
         "1 of 2 declared topics missing"),
        ({}, "fail", ["grid.prices.v1", "alerts.v1"], "2 of 2 declared topics missing"),
        ({"grid.prices.v1": Existing(1, CFG), "alerts.v1": Existing(1, CFG)}, "fail", [],
         "1 with other partition counts"),
        ({"grid.prices.v1": Existing(3, CFG), "alerts.v1": Existing(1, CFG)}, "fail", [],
         "1 with other partition counts"),
        ({"grid.prices.v1": Existing(2, {**CFG, "retention.ms": "5"}),
          "alerts.v1": Existing(1, CFG)}, "warn", [], "1 with other settings"),
    ],
    ids=["healthy", "one-missing", "none", "too-few-partitions", "too-many", "config-drift"],
)
def test_topic_verdicts(existing, status, missing, words) -> None:
    check = judge_topics(plan([A, B], existing), 2)
    assert check.status == status
    assert check.data["missing"] == missing
    assert words in check.summary
    if status == "fail":
        assert "spillway topics provision" in check.summary


@pytest.mark.parametrize(
    ("group", "namespace", "expected"),
    [
        ("spillway-mart-sink", "", True),
        ("spillway-mart-sink", "t1", True),
        ("t1.spillway-agents", "t1", True),
        ("t1.spillway-agents", "", False),
        ("t2.spillway-agents", "t1", False),
        ("other", "t1", False),
        ("my-spillway", "", False),
    ],
)
def test_spillway_groups(group: str, namespace: str, expected: bool) -> None:
    assert is_spillway_group(group, namespace) is expected


T0, T1 = ("t", 0), ("t", 1)


@pytest.mark.parametrize(
    ("committed", "end", "expected"),
    [
        ({"g": {T0: 5}}, {T0: 8}, {"g": 3}),
        ({"g": {T0: 5, T1: 0}}, {T0: 8, T1: 10}, {"g": 13}),
        ({"g": {T0: 8}}, {T0: 8}, {"g": 0}),
        ({"g": {T0: 9}}, {T0: 8}, {"g": 0}),  # committed past a truncated end
        ({"g": {T0: -1}}, {T0: 8}, {}),  # nothing committed
        ({"g": {T0: 1}}, {}, {}),  # end unknown
        ({"g": {T0: 1}, "h": {T1: 4}}, {T0: 2, T1: 4}, {"g": 1, "h": 0}),
    ],
)
def test_group_lags(committed, end, expected) -> None:
    assert group_lags(committed, end) == expected


@pytest.mark.parametrize(
    ("lags", "max_lag", "status"),
    [({}, 10, "ok"), ({"g": 10}, 10, "ok"), ({"g": 11}, 10, "fail"),
     ({"g": 0, "h": 11}, 10, "fail"), ({"g": 0}, 0, "ok")],
)
def test_lag_verdicts(lags, max_lag, status) -> None:
    check = judge_lag(lags, max_lag)
    assert check.status == status
    for group, n in lags.items():
        assert f"{group}: {n} messages behind" in check.details


def _letter(topic: str, kind: str) -> bytes:
    rejection = Rejection(kind, f"bad {kind}")  # type: ignore[arg-type]
    return deadletter.encode(deadletter.envelope(
        topic=topic, partition=0, offset=1, key=None, value=b"x", rejection=rejection,
        consumer="test", now_s=1.0,
    ))


def test_tally_by_source_and_kind_within_the_window() -> None:
    records = [
        (1000, _letter("ns.telemetry.gpu.v1", "schema")),
        (1000, _letter("ns.telemetry.gpu.v1", "schema")),
        (1500, _letter("ns.grid.prices.v1", "not_json")),
        (999, _letter("ns.grid.prices.v1", "not_json")),  # before the window
        (2000, b"not an envelope"),
        (2000, None),
    ]
    counts = tally_letters(records, since_ms=1000, namespace="ns")
    assert counts == Counter({
        ("telemetry.gpu.v1", "schema"): 2,
        ("grid.prices.v1", "not_json"): 1,
        ("?", "unreadable envelope"): 2,
    })


@pytest.mark.parametrize(
    ("total", "truncated", "status", "words"),
    [(0, False, "ok", "no dead letters in the last hour"),
     (1, False, "fail", "1 message dead-lettered"),
     (3, True, "fail", "3 messages dead-lettered")],
)
def test_letter_verdicts(total, truncated, status, words) -> None:
    counts = Counter({("telemetry.gpu.v1", "schema"): min(total, 1)}) if total else Counter()
    check = judge_letters(counts, total, 3600, truncated)
    assert check.status == status and words in check.summary
    assert (f"breakdown of the latest 1 of {total} only" in check.details) is truncated


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("gate interval_energy: PASS (3/3 expectations, 96 rows)\n  ok  x", "PASS"),
        ("gate carbon_hourly: FAIL (2/3 expectations, 24 rows)\n  FAIL y", "FAIL"),
        ("gate carbon_hourly: BROKEN, data not judged: KeyError: 'a'", "BROKEN"),
        ("gate x: FAIL\n  ok  z PASS", "FAIL"),  # first line only
        ('{"success": true, "mart": "x"}', "PASS"),
        ('{"success": false}', "FAIL"),
        ('{"mart": "x"}', None),
        ("{broken json", None),
        ("", None),
        ("PASSWORD reset", None),  # a word, not the verdict
    ],
)
def test_gate_verdict(text, verdict) -> None:
    assert gate_verdict(text) == verdict


def _touch(path: Path, text: str, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("files", "status", "words"),
    [
        ({}, "warn", "no mart publication yet"),
        ({"views.duckdb": ("", 10)}, "warn", "no mart publication yet"),
        ({"parquet/a/date=2026-01-01/part-1.parquet": ("", 600)}, "warn",
         "last publication 10 min ago (part-1.parquet); no quality-gate report"),
        ({"parquet/a/date=2026-01-01/part-1.parquet": ("", 7200),
          "parquet/b/date=2026-01-02/part-2.parquet": ("", 60),
          "_gates/a-2026-01-02-g000002.txt": ("gate a: PASS (1/1)", 60)},
         "ok", "last publication 60 s ago (part-2.parquet); latest quality gate passed"),
        ({"x.parquet": ("", 60),
          "_gates/a-g1.txt": ("gate a: PASS", 3600),
          "_gates/a-g2.txt": ("gate a: FAIL (0/1)", 60)},
         "fail", "latest quality gate failed"),
        ({"x.parquet": ("", 60),
          "_gates/a-g1.txt": ("gate a: FAIL", 3600),
          "_gates/a-g2.txt": ("gate a: PASS", 60)},
         "ok", "latest quality gate passed"),
        ({"x.parquet": ("", 60), "reports/gate-a.json": ('{"success": false}', 30)},
         "fail", "latest quality gate failed"),
        ({"x.parquet": ("", 60), "_gates/a.txt": ("gate a: BROKEN, not judged", 30)},
         "fail", "could not run"),
        ({"x.parquet": ("", 60), "_gates/a.txt": ("something else", 30)},
         "warn", "cannot read the verdict of a.txt"),
    ],
    ids=["empty", "no-parquet", "no-gate", "newest-of-two", "gate-failed", "failed-then-passed",
         "json-report", "broken-gate", "unreadable-gate"],
)
def test_mart_verdicts(tmp_path: Path, files, status, words) -> None:
    for rel, (text, age_s) in files.items():
        _touch(tmp_path / rel, text, NOW - age_s)
    parquet, gate = scan_marts(tmp_path)
    check = judge_marts(tmp_path, parquet, gate, NOW)
    assert check.status == status
    assert words in check.summary


def test_missing_marts_folder_is_no_publication(tmp_path: Path) -> None:
    parquet, gate = scan_marts(tmp_path / "absent")
    check = judge_marts(tmp_path / "absent", parquet, gate, NOW)
    assert (check.status, check.data["last_publication_s"]) == ("warn", None)


@pytest.mark.parametrize(
    ("statuses", "healthy"),
    [(["ok", "ok"], True), (["ok", "warn"], True), (["ok", "fail"], False),
     (["fail", "skip"], False), (["skip"], False)],
)
def test_report_health_and_output(statuses, healthy) -> None:
    report = Report("h:1", "ns", [Check(f"c{i}", s, f"said {i}") for i, s in enumerate(statuses)])
    assert report.healthy is healthy
    data = json.loads(json.dumps(report.as_json()))
    assert data["healthy"] is healthy and [c["status"] for c in data["checks"]] == statuses
    lines = report.lines()
    assert lines[0] == "spillway doctor: bootstrap h:1, topic namespace ns"
    assert lines[-1].startswith("healthy" if healthy else "NOT healthy")


def test_command_is_registered_with_json_flag() -> None:
    parser = argparse.ArgumentParser()
    doctor.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor", "--json", "--window", "60"])
    assert args.json and args.window == 60 and args.func is doctor._doctor


@pytest.mark.parametrize(
    ("held", "provisional", "status", "words"),
    [
        ({}, [], "ok", "every partition passed its quality gate"),
        ({}, [{"mart": "settlement", "site_id": "s", "key_start_s": 900,
               "reason": "interval_energy provisional: reconciled is false"}],
         "warn", "1 row(s) published provisional"),
        ({"interval_energy:2026-01-01": {"since_s": NOW - 600, "reason": "duplicate keys",
                                         "report": "r.txt"}}, [],
         "fail", "1 partition(s) held back by their quality gate"),
    ],
    ids=["clean", "provisional", "held"],
)
def test_mart_verdicts_from_the_manifest(tmp_path: Path, held, provisional, status,
                                         words) -> None:
    """The manifest's held partitions and provisional rows decide, with why, even when the
    newest gate report is a FAIL of a partition published provisionally."""
    _touch(tmp_path / "x.parquet", "", NOW - 60)
    _touch(tmp_path / "_gates/a.txt", "gate a: FAIL (published with 1 row(s) provisional)",
           NOW - 30)
    parquet, gate = scan_marts(tmp_path)
    manifest = Manifest(3, NOW - 60, {}, held, provisional)
    check = judge_marts(tmp_path, parquet, gate, NOW, manifest)
    assert (check.status, words in check.summary) == (status, True), check.summary
    if held:
        assert check.details[0].startswith("held interval_energy:2026-01-01 for 10 min")
    if provisional:
        assert "reconciled is false" in check.details[0]
