"""A mining fleet made of the REAL miner API captures, polled every P seconds, for cadence
tests and the ``cadence_day`` measurement.

Four captures of the conformance corpus (``tests/collectors/corpus``, real devices, Apache-2.0
from asic-rs) that report hashing: each stands for ``miners`` logical miners, scraped by
``streams.replay.asic_scrapes.rack_frames`` (all racks of a model at the same stamp, as the
replay sends them). One of them (stock Antminer S19 Pro) reports no wattage: the pipeline
estimates it from the site's nominal J/TH, as it would for the real fleet. A revenue (POI)
meter reads every second: fleet power plus a fixed overhead, so every second of the site has
a row (before sample-and-hold, a 60 s scrape then counted for 1 s in 60).

Only APIs that already existed before sample-and-hold are used here, so that the same
measurement runs against that tree (``cadence_day``); ``max_staleness`` is set only where
``SiteConfig`` has it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from schemas.site import AsicModel, ContractBlock, CurtailmentPolicy, Meter, SiteConfig
from schemas.telemetry import AsicFrame, MeterFrame
from streams.collectors.asic_parse import MinerReading
from streams.replay.asic_scrapes import AsicDrive, rack_frames, scrape_reading
from streams.replay.records import Record

CORPUS = Path(__file__).resolve().parents[1] / "collectors" / "corpus"

S19_PRO_J_PER_TH = 29.5
"""Bitmain's S19 Pro nameplate (110 TH/s at 3,250 W): the stock firmware reports no wattage."""

CAPTURES: tuple[tuple[str, str, str], ...] = (
    # (corpus folder, parser kind, frame prefix)
    ("antminer_s19pro_bmminer_49", "antminer", "s19pro"),
    ("braiins_os_25_07_s19xp", "braiins", "s19xp"),
    ("luxos_2025_4_8_s19kpro", "luxos", "s19kpro"),
    ("whatsminer_btminer_api_1_4", "whatsminer", "wm"),
)
OVERHEAD_W = 50_000.0
"""Fixed facility overhead the POI meter reads on top of the fleet, W."""
HASHPRICE_USD_PER_PH_DAY = 50.0
"""Policy hashprice valuing the mining work (``CurtailmentPolicy`` default)."""


@dataclass(frozen=True)
class Model:
    reading: MinerReading
    prefix: str
    miners: int

    @property
    def hashrate_ths(self) -> float:
        """Hashrate of one miner (``real_models`` keeps only captures that report one)."""
        assert self.reading.hashrate_ths is not None
        return self.reading.hashrate_ths

    @property
    def miner_w(self) -> float:
        """Wall power of one miner as the pipeline counts it (reported or estimated)."""
        if self.reading.power_w is not None:
            return self.reading.power_w
        return S19_PRO_J_PER_TH * self.hashrate_ths

    @property
    def j_per_th(self) -> float:
        return self.miner_w / self.hashrate_ths


def real_models(miners: int = 100) -> list[Model]:
    models = []
    for folder, kind, prefix in CAPTURES:
        reading = scrape_reading(CORPUS / folder, kind)
        if reading.state != "hashing" or not reading.hashrate_ths:
            raise ValueError(f"{folder}: capture is not hashing ({reading})")
        models.append(Model(reading, prefix, miners))
    return models


def fleet_truth(models: list[Model]) -> tuple[float, float]:
    """(mining W, hashrate TH/s) of the whole fleet: what a 1 s reading of it would show."""
    return (
        math.fsum(m.miner_w * m.miners for m in models),
        math.fsum(m.hashrate_ths * m.miners for m in models),
    )


def fleet_site(
    site_id: str, models: list[Model], *, asic_staleness_s: float, start_s: float
) -> SiteConfig:
    """A site of ``models`` with one POI meter and a contract covering the fleet."""
    mining_w, _ = fleet_truth(models)
    site = SiteConfig(
        site_id=site_id,
        name=f"Real captures ({site_id})",
        settlement_point="LZ_WEST",
        interconnection_limit_mw=10.0,
        contract=[
            ContractBlock(
                start_s=start_s - 86_400,
                end_s=start_s + 3 * 86_400,
                mw=round((mining_w + OVERHEAD_W) / 1e6, 3),
                price_usd_per_mwh=40.0,
            )
        ],
        gpu_pools=[],
        asic_models=[
            AsicModel(
                model=m.reading.model,
                count=m.miners,
                hashrate_ths=m.hashrate_ths,
                j_per_th=m.j_per_th,
            )
            for m in models
        ],
        meters=[Meter(meter_id="poi", role="poi")],
        overhead_fixed_mw=OVERHEAD_W / 1e6,
        # The replay is open loop: the controller may curtail, but its commands do not
        # change what the recorded miners report, so the load is constant by construction.
        policy=CurtailmentPolicy(
            hashprice_usd_per_ph_day=HASHPRICE_USD_PER_PH_DAY, site_limit_headroom_mw=0.0
        ),
    )
    if "max_staleness" in SiteConfig.__struct_fields__:
        raw = {**msgspec.to_builtins(site), "max_staleness": {"asic_s": asic_staleness_s}}
        site = msgspec.convert(raw, SiteConfig)
    return site


def asic_records(
    site_id: str, models: list[Model], period_s: float, start_s: float, end_s: float
) -> Iterator[Record]:
    """Every model's racks scraped every ``period_s`` from ``start_s`` (event-time order)."""
    streams = [
        rack_frames(
            AsicDrive(
                reading=m.reading,
                miners=m.miners,
                rack_size=50,
                period_s=period_s,
                site_id=site_id,
                prefix=f"{site_id}-{m.prefix}",
            ),
            start_s,
            end_s,
        )
        for m in models
    ]
    return heapq.merge(*streams, key=lambda r: r.ts_s)


def poi_frame(site_id: str, ts_s: float, seq: int, models: list[Model]) -> MeterFrame:
    mining_w, _ = fleet_truth(models)
    return MeterFrame(
        site_id=site_id,
        source_id=f"{site_id}-modbus-gw",
        ts_s=ts_s,
        seq=seq,
        meter_id=["poi"],
        power_w=[mining_w + OVERHEAD_W],
        energy_wh=[None],
    )


def poi_records(site_id: str, models: list[Model], start_s: int, end_s: int) -> Iterator[Record]:
    enc = msgspec.json.Encoder()
    key = f"{site_id}-modbus-gw".encode()
    for k, ts in enumerate(range(start_s, end_s)):
        frame = poi_frame(site_id, ts, k, models)
        yield Record(float(ts), "telemetry.meter.v1", key, enc.encode(frame))


ASIC_DECODER = msgspec.json.Decoder(AsicFrame)
