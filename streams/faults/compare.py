"""Compare what the marts hold after a faulted run with the offline truth, and reconcile
every produced message with the marts or the dead-letter topic.

Pure: inputs are rows already read (``Marts``) and the truth; the result is a list of
differences (empty: equal) and the reconciliation counts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import polars as pl

from schemas.deadletter import DeadLetter
from streams.faults.scenario import TELEMETRY_TYPES, Scenario
from streams.faults.truth import Truth, powers_frame, prices_frame, settle

POWER_FIELDS = (
    "ai_w",
    "mining_w",
    "overhead_w",
    "total_w",
    "poi_meter_w",
    "contract_w",
    "surplus_w",
    "hashrate_ths",
)
EXACT_POWER_FIELDS = ("readings", "late_readings", "flags")
REL_TOL = 1e-9
"""Power is a float sum; the agents add a second's frames per partition and in another
order than the truth, which moves the last bits (1e-9 of 1 MW is 1 mW)."""
ABS_TOL_W = 1e-6
EVENT_TABLES: dict[str, tuple[str, ...]] = {
    "surplus_events": ("event_id", "kind", "ts_s"),
    "curtailment_events": ("event_id", "kind", "ts_s"),
    "miner_commands": ("command_id", "issued_at_s"),
}
ENERGY_COLUMNS = (
    "ai_mwh",
    "mining_mwh",
    "overhead_mwh",
    "total_mwh",
    "poi_mwh",
    "contract_mwh",
    "unabsorbed_mwh",
    "over_contract_mwh",
)
MONEY_COLUMNS = (
    "forward_usd",
    "rt_sell_back_usd",
    "rt_purchase_usd",
    "mining_revenue_usd",
    "net_usd",
)
SHOW = 5
"""Differences listed per kind (the count is always given)."""


@dataclass
class Marts:
    """The rows of the sink database that the comparison needs."""

    site_power: list[dict[str, Any]]
    events: dict[str, list[dict[str, Any]]]
    """Table -> rows, for the tables of ``EVENT_TABLES``."""
    prices: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    """``sink_sources`` rows: topic, source_id, frames, stale_frames."""
    offsets: dict[str, int]
    """Full topic name -> next offset summed over partitions (sink_offsets)."""


@dataclass
class TopicCount:
    topic: str
    produced: int
    in_marts: int
    dead_lettered: int
    redelivered_letters: int = 0
    """Dead letters sent more than once for the same message (at least once, harmless)."""

    @property
    def lost(self) -> int:
        return self.produced - self.in_marts - self.dead_lettered


@dataclass
class Comparison:
    differences: list[str] = field(default_factory=list)
    counts: list[TopicCount] = field(default_factory=list)
    duplicates: int = 0
    """Messages counted twice: frames the sink saw twice, more in the marts than produced."""
    extra_rows: int = 0
    """Rows (seconds, events, commands) in the marts that the truth does not have."""
    lost: int = 0
    in_marts: int = 0
    dead_lettered: int = 0
    produced: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences and self.lost == 0 and self.duplicates == 0


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL_W)


def _listed(kind: str, keys: Sequence[Any]) -> str:
    shown = ", ".join(repr(k) for k in keys[:SHOW])
    more = f" (+{len(keys) - SHOW} more)" if len(keys) > SHOW else ""
    return f"{kind}: {len(keys)}: {shown}{more}"


def compare_power(
    truth: Sequence[Mapping[str, Any]], got: Sequence[Mapping[str, Any]], out: Comparison
) -> None:
    want = {(r["site_id"], r["ts_s"]): r for r in truth}
    have = {(r["site_id"], r["ts_s"]): r for r in got}
    missing = sorted(want.keys() - have.keys())
    extra = sorted(have.keys() - want.keys())
    if missing:
        out.differences.append(_listed("site_power seconds missing (site, ts_s)", missing))
    if extra:
        out.differences.append(_listed("site_power seconds not in the truth", extra))
        out.extra_rows += len(extra)
    differ: list[tuple[Any, ...]] = []
    for k in sorted(want.keys() & have.keys()):
        a, b = want[k], have[k]
        bad = [f for f in POWER_FIELDS if not _close(a[f], b[f])]
        for f in EXACT_POWER_FIELDS:
            av, bv = a[f], b[f]
            if f == "flags":
                av, bv = sorted(av or []), sorted(bv or [])
            if av != bv:
                bad.append(f)
        if bad:
            differ.append((k[1], {f: (a[f], b[f]) for f in bad}))
    if differ:
        out.differences.append(
            _listed("site_power seconds differ (ts_s, {field: (truth, marts)})", differ)
        )


def _event_key(row: Mapping[str, Any], key: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(row[k] for k in key)


def _same_row(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    for k, v in a.items():
        w = b.get(k)
        if isinstance(v, float) or isinstance(w, float):
            if not _close(v, w):
                return False
        elif (list(v) if isinstance(v, list | tuple) else v) != (
            list(w) if isinstance(w, list | tuple) else w
        ):
            return False
    return True


def compare_events(
    table: str,
    truth: Sequence[Mapping[str, Any]],
    got: Sequence[Mapping[str, Any]],
    out: Comparison,
) -> None:
    key = EVENT_TABLES[table]
    want = {_event_key(r, key): r for r in truth}
    if len(want) != len(truth):
        out.differences.append(f"{table}: the truth itself repeats a key {key}")
    have = {_event_key(r, key): r for r in got}
    missing = sorted(want.keys() - have.keys(), key=repr)
    extra = sorted(have.keys() - want.keys(), key=repr)
    if missing:
        out.differences.append(_listed(f"{table} rows missing {key}", missing))
    if extra:
        out.differences.append(_listed(f"{table} rows not in the truth {key}", extra))
        out.extra_rows += len(extra)
    differ = [
        k
        for k in sorted(want.keys() & have.keys(), key=repr)
        if not _same_row({c: want[k][c] for c in want[k] if c in have[k]}, have[k])
    ]
    if differ:
        out.differences.append(_listed(f"{table} rows differ {key}", differ))


def compare_money(truth: pl.DataFrame, got: pl.DataFrame, out: Comparison) -> None:
    """Energy per interval to the watt-hour, money to the cent."""
    keys = ["site_id", "interval_start_s"]
    j = truth.join(got, on=keys, how="full", suffix="_m", coalesce=True)
    for row in j.iter_rows(named=True):
        at = row["interval_start_s"]
        for c in ENERGY_COLUMNS:
            a, b = row[c], row[f"{c}_m"]
            if a is None and b is None:
                continue  # unknown on both sides (a POI gap is held, never zero): they agree
            if a is None or b is None or round(a * 1e6) != round(b * 1e6):
                out.differences.append(
                    f"interval {at}: {c} truth {a} MWh, marts {b} MWh (compared to the Wh)"
                )
        for c in MONEY_COLUMNS:
            a, b = row[c], row[f"{c}_m"]
            if a != b:
                out.differences.append(f"interval {at}: {c} truth {a}, marts {b}")


def letters_by_consumer(letters: Iterable[DeadLetter]) -> dict[str, Counter[tuple[str, int, int]]]:
    """consumer -> (source topic, partition, offset) -> times dead-lettered."""
    out: dict[str, Counter[tuple[str, int, int]]] = {}
    for d in letters:
        out.setdefault(d.consumer, Counter())[(d.source_topic, d.partition, d.offset)] += 1
    return out


def reconcile(
    scenario: Scenario,
    namespace: str,
    marts: Marts,
    sink_letters: Counter[tuple[str, int, int]],
    agent_letters: Counter[tuple[str, int, int]],
    truth: Truth,
    out: Comparison,
) -> None:
    """Per input topic: produced = in marts + dead-lettered (by the sink), and the agents
    dead-lettered exactly the hostile messages; readings of every valid frame reached
    site_power."""
    prefix = f"{namespace}." if namespace else ""
    produced = scenario.by_topic()
    frames = Counter[str]()
    stale = 0
    for r in marts.sources:
        frames[r["topic"]] += r["frames"]
        stale += r["stale_frames"]
    out.duplicates += stale
    if stale:
        out.differences.append(f"sink saw {stale} telemetry frames twice (stale frames)")
    prices_in = len(
        {(p["settlement_point"], p["kind"], p["interval_start_s"]) for p in marts.prices}
    )
    for topic, n in sorted(produced.items()):
        full = prefix + topic
        letters = Counter({k: v for k, v in sink_letters.items() if k[0] == full})
        stored = frames[topic] if topic in TELEMETRY_TYPES else prices_in
        tc = TopicCount(topic, n, stored, len(letters), sum(v - 1 for v in letters.values()))
        out.counts.append(tc)
        consumed = marts.offsets.get(full, 0)
        if consumed != n:
            out.differences.append(
                f"{topic}: the sink stored offsets for {consumed} messages, {n} were produced"
            )
        if tc.lost:
            out.differences.append(
                f"{topic}: {tc.lost} messages neither in the marts nor "
                f"dead-lettered ({n} produced, {stored} in marts, "
                f"{len(letters)} dead-lettered)"
            )
    out.produced = sum(produced.values())
    out.in_marts = sum(c.in_marts for c in out.counts)
    out.dead_lettered = sum(c.dead_lettered for c in out.counts)
    out.lost = sum(max(c.lost, 0) for c in out.counts)
    out.duplicates += sum(max(-c.lost, 0) for c in out.counts)
    hostile = Counter(m.topic for m in scenario.hostile())
    by_topic = Counter(k[0].removeprefix(prefix) for k in agent_letters)
    if by_topic != hostile:
        out.differences.append(
            f"agents dead-lettered {dict(by_topic)} distinct messages, "
            f"the scenario has hostile {dict(hostile)}"
        )
    got_readings = sum(int(r["readings"]) for r in marts.site_power)
    want_readings = sum(int(p.readings) for p in truth.powers)
    if got_readings != want_readings:
        out.differences.append(
            f"site_power holds {got_readings} readings, the truth {want_readings}"
        )


def compare_all(
    scenario: Scenario,
    truth: Truth,
    marts: Marts,
    namespace: str,
    letters: Iterable[DeadLetter],
    agents_consumer: str,
    sink_consumer: str,
) -> Comparison:
    out = Comparison()
    compare_power([msgspec.to_builtins(p) for p in truth.powers], marts.site_power, out)
    for table, rows in (
        ("surplus_events", truth.surplus),
        ("curtailment_events", truth.curtailments),
        ("miner_commands", truth.commands),
    ):
        compare_events(table, [_event_row(r) for r in rows], marts.events.get(table, []), out)
    rt = prices_frame(scenario.prices, scenario.site.settlement_point)
    want = settle(scenario.site, powers_frame(truth.powers), rt)
    have_power = pl.DataFrame(
        [{c: r[c] for c in powers_frame([]).columns} for r in marts.site_power],
        schema=powers_frame([]).schema,
    )
    mart_rt = pl.DataFrame(
        [
            (int(p["interval_start_s"]), p["price_usd_per_mwh"])
            for p in marts.prices
            if p["settlement_point"] == scenario.site.settlement_point and p["kind"] == "rt"
        ],
        schema={"interval_start_s": pl.Int64, "price_usd_per_mwh": pl.Decimal(18, 6)},
        orient="row",
    )
    if have_power.height:
        compare_money(want, settle(scenario.site, have_power, mart_rt), out)
    by_consumer = letters_by_consumer(letters)
    reconcile(
        scenario,
        namespace,
        marts,
        by_consumer.get(sink_consumer, Counter()),
        by_consumer.get(agents_consumer, Counter()),
        truth,
        out,
    )
    return out


def _event_row(ev: msgspec.Struct) -> dict[str, Any]:
    d: dict[str, Any] = msgspec.to_builtins(ev)
    d.pop("v", None)
    return d
