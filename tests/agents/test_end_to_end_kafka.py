"""End to end on the real broker: a worker subprocess turns a scenario with a price spike
over breakeven, an AI spike and a demand-response dispatch into exactly the SitePower,
surplus events, curtailment events, commands and alerts that the pure decision functions
give on the same inputs (run here directly, one source partition, no faust), plus
hand-checked facts.

It runs twice: with the telemetry as JSON frames and as packed frames (``schemas.packed``,
stage 1's numpy path). The scenario is sent in steps, each waiting until the worker has
taken the previous one in (stage-1 partials complete for every second, or the SitePower
before a grid signal), so the order in which the controller sees its inputs is the one the
reference uses. Halfway, the worker is stopped and a new one (fresh RocksDB folder) goes on
from the changelogs: the same curtailment event carries on, so every decision state was
restored.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas.events import (
    Alert,
    CurtailmentEvent,
    MinerCommand,
    SitePower,
    SitePowerPartial,
    SurplusEvent,
)
from schemas.grid import DispatchSignal, PriceSignal
from schemas.registry import CONTRACTS
from schemas.site import ContractBlock, CurtailmentPolicy, GpuPool, SiteConfig
from schemas.validation import Limits, Rejection
from streams.agents.sites import publish_site
from streams.decisions.alerts import AlertState, alerts_step
from streams.decisions.curtailment import ControllerInput, ControllerState, controller_step
from streams.decisions.fleet import fleet_roster
from streams.decisions.power import (
    CombineConfig,
    CombineState,
    PartialState,
    close_all,
    combine,
    fold_partials,
    index_site,
)
from streams.decisions.surplus import SurplusState, surplus_step
from streams.settings import Settings
from tests.agents.helpers import Collector, Second, frames, produce, small_site, worker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

LATENESS = 2


def scenario_site(t0: float) -> SiteConfig:
    """The small site with 40 GPU nodes, 1.2 MW bought and a 50 kW headroom."""
    base = small_site()
    return msgspec.structs.replace(
        base,
        site_id=f"e2e-{uuid.uuid4().hex[:6]}",
        contract=[
            ContractBlock(start_s=t0 - 86400, end_s=t0 + 86400, mw=1.2, price_usd_per_mwh=40.0)
        ],
        gpu_pools=[
            GpuPool(
                name="train",
                nodes=40,
                gpus_per_node=8,
                gpu_model="H100-SXM",
                gpu_power_limit_w=700.0,
            )
        ],
        policy=CurtailmentPolicy(hashprice_usd_per_ph_day=50.0, site_limit_headroom_mw=0.05),
    )


class Run:
    """Sends the scenario step by step and remembers every input in order."""

    def __init__(
        self, settings: Settings, site: SiteConfig, collector: Collector, encoding: str
    ) -> None:
        self.settings = settings
        self.encoding = encoding
        self.site = site
        self.col = collector
        self.frames: list[tuple[int, list[Any]]] = []
        """(second, frames) in send order."""
        self.controller_inputs: list[tuple[int, ControllerInput]] = []
        """(after this many SitePowers, grid signal)."""
        self.partials: dict[tuple[int, str], int] = {}

    def second(self, sec: Second, seq: int) -> None:
        out = frames(self.site, sec, seq, encoding=self.encoding)
        produce(self.settings, [(t, k, v) for t, k, v, _ in out])
        limits = Limits(now_s=time.time())
        decoded = [CONTRACTS[t].decode(v, limits) for t, _, v, _ in out]
        assert not any(isinstance(f, Rejection) for f in decoded), decoded
        self.frames.append((int(sec.ts_s), decoded))
        want = sum(n for *_, n in out)
        ts = int(sec.ts_s)

        def complete(got: dict[str, list[Any]]) -> bool:
            for p in got["site.power.partial.v1"]:
                self.partials[(p.ts_s, p.source_partition)] = p.readings
            got["site.power.partial.v1"].clear()
            return sum(n for (s, _), n in self.partials.items() if s == ts) == want

        self.col.until(complete, 30, f"stage-1 partials of second {ts} ({want} readings)")

    def wait_power(self, ts: int) -> None:
        self.col.until(
            lambda g: any(p.ts_s == ts for p in g["site.power.v1"]), 30, f"SitePower {ts}"
        )

    def grid(self, topic: str, signal: Any, after_powers: int) -> None:
        produce(self.settings, [(topic, b"grid", msgspec.json.encode(signal))])
        self.controller_inputs.append((after_powers, signal))


def reference(run: Run, site: SiteConfig) -> dict[str, list[Any]]:
    """The same inputs through the pure functions, in one process and one partition."""
    idx = {site.site_id: index_site(site)}
    fleet = fleet_roster(site)
    pstate, cstate = PartialState(), CombineState()
    powers: list[SitePower] = []
    for _, fs in run.frames:
        pstate, folded = fold_partials(
            pstate, fs, idx, source_partition="ref:0", lateness_s=LATENESS
        )
        assert not folded.late
        cstate, combined = combine(
            cstate, folded.partials, idx, now_s=0.0, config=CombineConfig(lateness_s=LATENESS)
        )
        assert not combined.late and not combined.gaps
        powers.extend(combined.powers)
    # The agents close the last seconds as soon as they are complete: close them here too.
    cstate, combined = close_all(cstate, idx, now_s=0.0)
    powers.extend(combined.powers)
    inputs: list[ControllerInput] = []
    grid = sorted(run.controller_inputs, key=lambda x: x[0])
    for i, p in enumerate(powers):
        while grid and grid[0][0] == i:
            inputs.append(grid.pop(0)[1])
        inputs.append(p)
    _, surplus = surplus_step(SurplusState(site_id=site.site_id), powers)
    ctrl, decided = controller_step(ControllerState(site_id=site.site_id), inputs, site, fleet)
    _, alerts = alerts_step(
        AlertState(site_id=site.site_id),
        site,
        now_s=ctrl.clock_s,
        powers=powers,
        curtailments=decided.events,
    )
    return {
        "site.power.v1": powers,
        "surplus.events.v1": surplus,
        "curtailment.events.v1": decided.events,
        "miners.commands.v1": decided.commands,
        "alerts.v1": alerts,
    }


def _plain(x: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    d: dict[str, Any] = msgspec.to_builtins(x)
    for k in drop:
        d.pop(k, None)
    return d


def _close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(
        v == pytest.approx(b[k], rel=1e-9, abs=1e-6) if isinstance(v, float) else v == b[k]
        for k, v in a.items()
    )


@pytest.mark.parametrize("encoding", ["json", "packed"])
def test_scenario_gives_exactly_the_reference_decisions(
    fresh_namespace_settings: Settings, tmp_path: Path, encoding: str
) -> None:
    settings = fresh_namespace_settings
    t0 = float(int(time.time()) - 120)
    site = scenario_site(t0)
    publish_site(settings, site)
    types: dict[str, type[Any]] = {
        "site.power.partial.v1": SitePowerPartial,
        "site.power.v1": SitePower,
        "surplus.events.v1": SurplusEvent,
        "curtailment.events.v1": CurtailmentEvent,
        "miners.commands.v1": MinerCommand,
        "alerts.v1": Alert,
    }
    col = Collector(settings, types)
    log = tmp_path / "worker1.log"
    fleet = fleet_roster(site)
    s21, s19 = fleet.model("S21"), fleet.model("S19jPro")
    try:
        args = ("--site", site.site_id, "--tick", "off", "--loglevel", "info")
        run = Run(settings, site, col, encoding)
        seq = 0
        with worker(settings, *args, log=log) as proc:
            for i in range(10):  # A: normal
                run.second(Second(ts_s=t0 + i, gpu_w=300.0), seq := seq + 1)
            run.wait_power(int(t0) + 9 - LATENESS - 1)
            price = PriceSignal(
                market="ERCOT",
                settlement_point=site.settlement_point,
                kind="rt",
                interval_start_s=t0 - 900,
                interval_end_s=t0,
                price_usd_per_mwh=100.0,
                # Posted at second 10: it acts once the controller's clock reaches it (second
                # 10 closes), wherever it arrives among the partials of seconds 7 to 9.
                published_s=t0 + 10,
            )
            run.grid("grid.prices.v1", price, after_powers=7)
            for i in range(10, 20):  # B: the least efficient model asleep
                run.second(Second(ts_s=t0 + i, gpu_w=300.0, awake={"S19jPro": 0}), seq := seq + 1)
            col.until(lambda g: len(g["curtailment.events.v1"]) >= 1, 30, "curtailment issued")
            run.wait_power(int(t0) + 19 - LATENESS - 1)
            assert proc.poll() is None, log.read_text()[-3000:]
        # A new worker (fresh RocksDB folder) restores every state from the changelogs.
        log = tmp_path / "worker2.log"
        with worker(settings, *args, log=log) as proc:
            for i in range(20, 30):  # C: AI spike
                run.second(Second(ts_s=t0 + i, gpu_w=700.0, awake={"S19jPro": 0}), seq := seq + 1)
            run.wait_power(int(t0) + 29 - LATENESS - 1)
            dispatch = DispatchSignal(
                event_id="dr-1",
                site_id=site.site_id,
                kind="demand_response",
                reduce_to_mw=0.1,
                start_s=t0 + 30,
                response_deadline_s=60.0,
            )
            run.grid("grid.dispatch.v1", dispatch, after_powers=27)
            time.sleep(2.0)  # the dispatch reaches the controller before second 30 closes
            for i in range(30, 40):  # D: dispatched down to 100 kW
                awake = {"S19jPro": 0, "S21": 28}
                run.second(Second(ts_s=t0 + i, gpu_w=700.0, awake=awake), seq := seq + 1)
            run.wait_power(int(t0) + 39 - LATENESS - 1)
            got = col.settle(2.0)
            assert proc.poll() is None, log.read_text()[-3000:]
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n--- worker log (tail) ---\n{log.read_text()[-4000:]}"
        ) from None
    finally:
        col.close()
    want = reference(run, site)

    # Independent reference: every output, field by field (emitted_s is wall clock).
    powers = got["site.power.v1"]
    assert [p.ts_s for p in powers] == [int(t0) + i for i in range(40)]
    for a, b in zip(powers, want["site.power.v1"], strict=True):
        assert _close(_plain(a, ("emitted_s",)), _plain(b, ("emitted_s",))), (a, b)
    for topic in ("surplus.events.v1", "curtailment.events.v1", "miners.commands.v1", "alerts.v1"):
        assert len(got[topic]) == len(want[topic]), (topic, got[topic], want[topic])
        for a, b in zip(got[topic], want[topic], strict=True):
            assert _close(_plain(a), _plain(b)), (topic, a, b)

    # Hand-checked facts.
    p0 = powers[0]
    assert p0.readings == 320 + 270 + 3
    assert p0.ai_w == 320 * 300.0 + 40 * 1500.0
    assert p0.mining_w == pytest.approx(120 * 3500.0 + 150 * 104.0 * 29.5)
    spike = powers[20]
    assert spike.ai_w == 320 * 700.0 + 40 * 1500.0
    assert spike.surplus_w == pytest.approx(1.2e6 - 284_000.0 - (20_000.0 + 0.05 * 704_000.0))
    surplus = got["surplus.events.v1"]
    assert [(e.kind, e.ts_s) for e in surplus] == [("open", t0), ("update", t0 + 20)]
    events = got["curtailment.events.v1"]
    assert len({e.event_id for e in events}) == 1
    assert [e.kind for e in events] == ["issued", "achieved", "updated", "achieved"]
    assert events[0].reasons == ["economic"] and events[0].issued_at_s == t0 + 10
    assert set(events[-1].reasons) == {"economic", "grid"}
    assert events[-1].target_mining_w == 100_000.0  # the dispatch: reduce to 0.1 MW
    assert events[-1].deadline_met is True
    cmds = got["miners.commands.v1"]
    assert (
        [(c.action, c.miner_ids) for c in cmds]
        == [
            ("sleep", s19.miner_ids),  # breakeven 50/(0.024*29.5) = 70.6 < 100 < 119.0 (S21)
            ("sleep", s21.miner_ids[: 120 - 28]),  # 100 kW / 3.5 kW = 28 S21 stay on
        ]
    )
    assert got["alerts.v1"] == []
