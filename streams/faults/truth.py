"""The offline truth: what the marts must hold for a scenario, computed WITHOUT Kafka by
the same pure functions the agents run (fold_partials, combine, surplus_step,
controller_step) and the transforms the settlement team runs (interval_energy,
build_settlement).

Why offline and not a clean Kafka run: a clean run would check faults against another run
of the same code (a bug present in both would cancel out); the pure functions fed in one
process and one partition are an independent path to the same answer. The agents run with
``--tick off`` for this: event-time ticks come from the wall clock, which no offline
computation can replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec
import polars as pl

from schemas.events import CurtailmentEvent, MinerCommand, SitePower, SurplusEvent
from schemas.grid import PriceSignal
from schemas.site import SiteConfig
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame
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
from streams.faults.scenario import TELEMETRY_TYPES, Scenario
from transforms.energy import SITE_POWER_COLUMNS, interval_energy
from transforms.settlement import build_settlement

Frame = MeterFrame | GpuFrame | AsicFrame


@dataclass
class Truth:
    powers: list[SitePower]
    surplus: list[SurplusEvent]
    curtailments: list[CurtailmentEvent]
    commands: list[MinerCommand]
    readings: dict[str, int]
    """Base topic -> readings in the valid frames."""
    frames: dict[str, int]
    """Base topic -> valid frames."""


def frames_of(scenario: Scenario) -> list[tuple[int, list[Frame]]]:
    """Valid telemetry frames grouped by simulated second, in send order."""
    out: dict[int, list[Frame]] = {}
    for m in scenario.valid():
        kind = TELEMETRY_TYPES.get(m.topic)
        if kind is not None:
            out.setdefault(m.second, []).append(msgspec.json.decode(m.value, type=kind))
    return sorted(out.items())


def compute_truth(scenario: Scenario, lateness_s: int) -> Truth:
    site = scenario.site
    idx = {site.site_id: index_site(site)}
    pstate, cstate = PartialState(), CombineState()
    cfg = CombineConfig(lateness_s=lateness_s)
    powers: list[SitePower] = []
    readings: dict[str, int] = {}
    frames: dict[str, int] = {}
    for _, fs in frames_of(scenario):
        for f in fs:
            topic = next(t for t, k in TELEMETRY_TYPES.items() if isinstance(f, k))
            readings[topic] = readings.get(topic, 0) + len(f.power_w)
            frames[topic] = frames.get(topic, 0) + 1
        pstate, folded = fold_partials(
            pstate, fs, idx, source_partition="truth:0", lateness_s=lateness_s
        )
        if folded.late or folded.duplicate_frames:
            raise AssertionError(
                f"truth: the scenario itself has late or repeated frames "
                f"({len(folded.late)} late, {folded.duplicate_frames} repeated)"
            )
        cstate, combined = combine(cstate, folded.partials, idx, now_s=0.0, config=cfg)
        powers.extend(combined.powers)
    # The agents close the last seconds as soon as they are complete.
    cstate, combined = close_all(cstate, idx, now_s=0.0, config=cfg)
    powers.extend(combined.powers)
    _, surplus = surplus_step(SurplusState(site_id=site.site_id), powers)
    inputs: list[ControllerInput] = [*scenario.prices, *powers]
    _, decided = controller_step(
        ControllerState(site_id=site.site_id), inputs, site, fleet_roster(site)
    )
    return Truth(
        powers=powers,
        surplus=surplus,
        curtailments=decided.events,
        commands=decided.commands,
        readings=readings,
        frames=frames,
    )


def powers_frame(rows: list[SitePower]) -> pl.DataFrame:
    data = [{c: getattr(p, c) for c in SITE_POWER_COLUMNS} for p in rows]
    return pl.DataFrame(
        data,
        schema={
            "site_id": pl.String,
            "ts_s": pl.Int64,
            **{c: pl.Float64 for c in SITE_POWER_COLUMNS[2:]},
        },
    )


def prices_frame(prices: list[PriceSignal], settlement_point: str) -> pl.DataFrame:
    """RT prices at one settlement point, as ``build_settlement`` wants them (Decimal)."""
    rows = [
        (int(p.interval_start_s), Decimal(str(p.price_usd_per_mwh)))
        for p in prices
        if p.settlement_point == settlement_point and p.kind == "rt"
    ]
    return pl.DataFrame(
        rows,
        schema={"interval_start_s": pl.Int64, "price_usd_per_mwh": pl.Decimal(18, 6)},
        orient="row",
    )


def settle(site: SiteConfig, site_power: pl.DataFrame, rt_prices: pl.DataFrame) -> pl.DataFrame:
    """Interval energy and settlement of ``site_power`` (money in exact cents)."""
    energy = interval_energy(site_power)
    contracts = pl.DataFrame(
        [
            (
                site.site_id,
                b.start_s,
                b.end_s,
                Decimal(str(b.mw)),
                Decimal(str(b.price_usd_per_mwh)),
            )
            for b in site.contract
        ],
        schema={
            "site_id": pl.String,
            "start_s": pl.Float64,
            "end_s": pl.Float64,
            "mw": pl.Decimal(18, 6),
            "price_usd_per_mwh": pl.Decimal(18, 6),
        },
        orient="row",
    )
    hashprice = pl.DataFrame(
        {
            "start_s": [0.0],
            "hashprice_usd_per_ph_day": [Decimal(str(site.policy.hashprice_usd_per_ph_day))],
        },
        schema={"start_s": pl.Float64, "hashprice_usd_per_ph_day": pl.Decimal(18, 6)},
    )
    money = build_settlement(energy, rt_prices, contracts, hashprice=hashprice)
    return energy.join(
        money.select(
            "site_id", "interval_start_s", *[c for c in money.columns if c.endswith("_usd")]
        ),
        on=["site_id", "interval_start_s"],
    )
