"""`spillway run`: the reference site through one market day, closed loop, end to end.

Broker and topics (a namespace of its own per run), the site on ``site.config.v1``, the agents
worker and the mart sink as child processes, the simulator in this process reacting to the
agents' miner commands, the day's real grid signals sent in step with simulated time, a live
view, then the month-close reports and a summary. Ctrl-C stops everything cleanly: the sink
commits whole batches with their offsets, so nothing is half written.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.admin import admin_session, committed_offsets, end_offsets
from infra.provision import provision
from infra.topics import TOPICS, full_name
from streams.agents.sites import publish_site
from streams.io.kafka import TopicProducer
from streams.pipeline import last_run
from streams.pipeline.plan import DayPlan, dispatch_records, faults, prepare_site
from streams.pipeline.procs import Child, child_env, start_child
from streams.replay import scenario as scenarios
from streams.replay.records import Record, merge
from streams.settings import Settings
from streams.sim.model import Step
from streams.sim.runner import SimStats, run_simulator
from streams.site_file import SiteFile, load_site_file

Say = Callable[[str], None]
TEN_YEARS_S = 10 * 365 * 86400.0


@dataclass
class DayResult:
    namespace: str
    home: Path
    site_file: SiteFile
    sim: SimStats | None = None
    wall_s: float = 0.0
    interrupted: bool = False
    children: dict[str, Child] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)


PRICES_TOPIC = "grid.prices.v1"
PRICE_LAG_S = 900.0
"""Past the simulation's end, how long prices are still sent: covers the publication of the
window's last 15-minute price (its interval's end plus ERCOT's posting delay)."""


class GridFeeder:
    """Sends the day's grid records whose event time has come, from the simulator's step."""

    def __init__(self, settings: Settings, records: Iterator[Record]) -> None:
        self.producer = TopicProducer(settings)
        self.records = records
        self.pending: Record | None = next(records, None)
        self.sent = 0

    def __call__(self, step: Step) -> None:
        while self.pending is not None and self.pending.ts_s <= step.ts_s:
            rec = self.pending
            self.producer.send(rec.topic, rec.value, key=rec.key)
            self.sent += 1
            self.pending = next(self.records, None)
        self.producer.producer.poll(0)

    def publish_after(self, end_s: float, lag_s: float) -> None:
        """Send the prices published within ``lag_s`` after the simulation's end: a price is
        sent when ERCOT posts it, after its interval, so the window's last intervals are
        priced only then. Other grid records past the end are not the window's."""
        while self.pending is not None and self.pending.ts_s <= end_s + lag_s:
            rec = self.pending
            if rec.topic == PRICES_TOPIC:
                self.producer.send(rec.topic, rec.value, key=rec.key)
                self.sent += 1
            self.pending = next(self.records, None)
        self.producer.producer.poll(0)

    def close(self) -> None:
        self.producer.flush()


def group_lag(settings: Settings, group: str) -> int | None:
    """Messages ``group`` has still to read on the declared topics of this namespace (None:
    no offsets yet). Internal topics are left out: the agents' once-a-second tick keeps a
    message in flight on theirs forever."""
    declared = {full_name(t.name, settings.topic_namespace) for t in TOPICS}
    with admin_session(settings, "spillway-run") as admin:
        committed = committed_offsets(admin, group)
        mine = {tp: off for tp, off in committed.items() if tp[0] in declared}
        if not mine:
            return None
        ends = end_offsets(admin, mine)
    return sum(max(ends[tp] - off, 0) for tp, off in mine.items() if off >= 0)


def wait_drained(settings: Settings, group: str, child: Child, max_s: float, say: Say) -> bool:
    """Until ``group`` has read everything (twice in a row), its process dies, or ``max_s``."""
    deadline = time.monotonic() + max_s
    zero = 0
    shown = time.monotonic()
    while time.monotonic() < deadline and child.alive():
        child.sample()
        lag = group_lag(settings, group)
        zero = zero + 1 if lag == 0 else 0
        if zero >= 2:
            return True
        if time.monotonic() - shown > 20:
            say(f"{child.name}: {lag:,} messages still to read")
            shown = time.monotonic()
        time.sleep(1.5)
    say(f"{child.name}: still {group_lag(settings, group)} messages behind after {max_s:.0f} s")
    return False


def run_day(
    base: Settings,
    plan: DayPlan,
    *,
    say: Say,
    stop: threading.Event,
    on_step: Callable[[Step], None] | None = None,
    on_started: Callable[[Settings, SiteFile], None] | None = None,
) -> DayResult:
    namespace = f"run{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    home = base.home / "runs" / namespace
    settings = base.model_copy(
        update={
            "topic_namespace": namespace,
            "max_age_s": TEN_YEARS_S,
            # A historical day: late readings are restated however old their seconds are.
            "restatement_horizon_s": TEN_YEARS_S,
            "home": home,
        }
    )
    last_run.record(base, settings)
    site_file = prepare_site(plan, load_site_file(plan.site_file))
    site = site_file.site
    result = DayResult(namespace, home, site_file)
    for line in provision(settings).describe()[:1]:
        say(f"topics in namespace {namespace}: {line} ...")
    publish_site(settings, site)
    say(
        f"site {site.site_id} at scale {plan.scale:g}: {sum(m.count for m in site.asic_models):,} "
        f"miners, {sum(p.nodes for p in site.gpu_pools):,} GPU nodes, contract "
        f"{site.contract[0].mw:g} MW"
    )

    env = child_env(settings, home)
    agents_group = f"{namespace}.spillway-agents"
    sink_group = f"{namespace}.spillway-mart-sink"
    result.children["agents"] = start_child(
        "agents",
        [
            "agents",
            "--site",
            site.site_id,
            "--tick",
            "event",
            "--max-open",
            str(plan.max_open_s),
            "--hashprice",
            str(plan.hashprice_usd_per_ph_day),
            "--data-dir",
            str(home / "agents"),
        ],
        env,
        home / "agents.log",
    )
    result.children["sink"] = start_child(
        "sink",
        ["sink", "--group", sink_group, "--publish-every", "30", "--progress-every", "60"],
        env,
        home / "sink.log",
    )
    grid = scenarios.sources(scenarios.load(plan.grid_scenario))
    grid["dispatch"] = dispatch_records(plan, site_file)
    feeder = GridFeeder(settings, merge(grid))
    if on_started is not None:
        on_started(settings, site_file)

    def step_hook(step: Step) -> None:
        feeder(step)
        if on_step is not None:
            on_step(step)
        for child in result.children.values():
            if not child.alive():
                raise RuntimeError(
                    f"{child.name} stopped unexpectedly; log {child.log}:\n" + child.tail()
                )

    t0 = time.monotonic()
    say(
        f"simulating {plan.day} for {plan.hours:g} h at {plan.speed:g}x "
        f"(about {plan.hours * 3600 / plan.speed / 60:.1f} min); logs in {home}"
    )
    try:
        result.sim = run_simulator(
            settings,
            site,
            sim=site_file.sim,
            start_s=plan.start_s(site_file),
            seconds=int(plan.hours * 3600),
            speed=plan.speed,
            stop_event=stop,
            on_step=step_hook,
            faults=faults(plan, site_file),
        )
        result.interrupted = stop.is_set()
        if not result.interrupted:
            feeder.publish_after(plan.start_s(site_file) + plan.hours * 3600, PRICE_LAG_S)
        feeder.close()
        if not result.interrupted:
            say("simulation done; waiting for the agents and the sink to catch up")
            wait_drained(settings, agents_group, result.children["agents"], 600, say)
            wait_drained(settings, sink_group, result.children["sink"], 300, say)
    finally:
        for name in ("sink", "agents"):  # the sink first: it commits and publishes on SIGTERM
            child = result.children[name]
            child.sample()
            code = child.stop()
            if code not in (0, -15, 143):
                say(f"{name} exited with {code}; log {child.log}")
        result.wall_s = time.monotonic() - t0
    return result
