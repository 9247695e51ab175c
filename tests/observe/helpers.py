"""Messages for the observer tests, with round numbers so expected figures derive by hand.

Site ``s1``: S21 100 x 200 TH x 17.5 J/TH and S19jPro 100 x 100 TH x 30 J/TH, hashprice
$50/PH/day, settlement point LZ_WEST, interconnection 420 MW, contract 400 MW.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from schemas.deadletter import DeadLetter
from schemas.events import Alert, CurtailmentEvent, SitePower, SurplusEvent
from schemas.grid import CarbonIntensity, PriceSignal
from schemas.site import AsicModel, ContractBlock, CurtailmentPolicy, Meter, SiteConfig

T0 = 1_763_000_100
"""2025-11-13T02:15:00Z, a 15-minute boundary."""


def site(site_id: str = "s1", point: str = "LZ_WEST", hashprice: float = 50.0) -> SiteConfig:
    return SiteConfig(
        site_id=site_id,
        name="Test site",
        settlement_point=point,
        interconnection_limit_mw=420.0,
        contract=[ContractBlock(start_s=0.0, end_s=4e9, mw=400.0, price_usd_per_mwh=38.0)],
        gpu_pools=[],
        asic_models=[
            AsicModel(model="S21", count=100, hashrate_ths=200.0, j_per_th=17.5),
            AsicModel(model="S19jPro", count=100, hashrate_ths=100.0, j_per_th=30.0),
        ],
        meters=[Meter(meter_id="poi", role="poi")],
        policy=CurtailmentPolicy(hashprice_usd_per_ph_day=hashprice),
    )


def power(ts: int, *, site_id: str = "s1", ai_mw: float = 190.0, mining_mw: float = 110.0,
          overhead_mw: float = 10.0, contract_mw: float = 400.0,
          emitted_after_s: float = 0.25, **kw: Any) -> SitePower:
    total = ai_mw + mining_mw + overhead_mw
    return SitePower(
        site_id=site_id, ts_s=ts, ai_w=ai_mw * 1e6, mining_w=mining_mw * 1e6,
        overhead_w=overhead_mw * 1e6, total_w=total * 1e6, poi_meter_w=total * 1e6,
        contract_w=contract_mw * 1e6, surplus_w=(contract_mw - ai_mw - overhead_mw) * 1e6,
        hashrate_ths=5.5e6, readings=1000, emitted_s=ts + emitted_after_s, **kw,
    )


def curtailment(kind: str, *, event_id: str = "c1", site_id: str = "s1", issued: float = T0,
                **kw: Any) -> CurtailmentEvent:
    fields: dict[str, Any] = {
        "event_id": event_id, "site_id": site_id, "kind": kind,
        "reasons": ["economic", "grid"],
        "reason_details": ["RT $412.50 > S19jPro breakeven $69.44", "ECRS deployment"],
        "issued_at_s": issued, "target_mining_w": 20e6, "baseline_mining_w": 110e6,
        "deadline_s": issued + 60, "ts_s": issued,
    }
    fields.update(kw)
    return CurtailmentEvent(**fields)


def alert(state: str = "firing", *, alert_id: str = "s1/meter_silent/poi/1", started: float = T0,
          site_id: str = "s1", severity: str = "critical", condition: str = "meter_silent",
          subject: str = "poi", message: str = "revenue meter poi silent for 10 s",
          **kw: Any) -> Alert:
    return Alert(alert_id=alert_id, site_id=site_id, condition=condition,  # type: ignore[arg-type]
                 subject=subject, severity=severity, state=state,  # type: ignore[arg-type]
                 started_at_s=started, message=message, **kw)


def price(start: float, usd: float, *, point: str = "LZ_WEST", kind: str = "rt") -> PriceSignal:
    return PriceSignal(market="ERCOT", settlement_point=point, kind=kind,  # type: ignore[arg-type]
                       interval_start_s=start, interval_end_s=start + 900,
                       price_usd_per_mwh=usd)


def carbon(hour: float, g: float, *, region: str = "ERCOT",
           kind: str = "average") -> CarbonIntensity:
    return CarbonIntensity(region=region, kind=kind, hour_start_s=hour,  # type: ignore[arg-type]
                           intensity_g_per_kwh=g, source="test")


def surplus(kind: str = "open", *, surplus_mw: float = 200.0,
            absorbed_mw: float = 110.0) -> SurplusEvent:
    return SurplusEvent(event_id="sp1", site_id="s1", kind=kind,  # type: ignore[arg-type]
                        ts_s=T0, start_s=T0,
                        end_s=None, surplus_w=surplus_mw * 1e6, absorbed_w=absorbed_mw * 1e6,
                        unabsorbed_w=(surplus_mw - absorbed_mw) * 1e6, energy_wh=5e6,
                        absorbed_wh=2.75e6, unabsorbed_wh=2.25e6)


def deadletter(source: str = "telemetry.gpu.v1") -> DeadLetter:
    return DeadLetter(source_topic=source, partition=0, offset=1, key_b64=None,
                      value_b64="eA==", kind="not_json", reason="not valid JSON",
                      failed_at_s=T0, consumer="test")


def settlement(rows: list[tuple[str, int, str, str]]) -> pl.DataFrame:
    """Settlement rows ``(site_id, interval_start_s, poi_mwh, net_usd)``, Decimal like the mart."""
    return pl.DataFrame(
        {"site_id": [r[0] for r in rows], "interval_start_s": [r[1] for r in rows],
         "poi_mwh": [Decimal(r[2]) for r in rows], "net_usd": [Decimal(r[3]) for r in rows]},
        schema={"site_id": pl.String, "interval_start_s": pl.Int64,
                "poi_mwh": pl.Decimal(38, 6), "net_usd": pl.Decimal(38, 2)})


def publish_marts(marts: Path, published_at_s: float,
                  tables: dict[str, dict[str, pl.DataFrame]], gen: int = 2) -> None:
    """Lay out a publication as streams/marts/publish.py does: Parquet files per partition
    and the manifest naming them."""
    units: dict[str, dict[str, str]] = {}
    for table, parts in tables.items():
        for unit, frame in parts.items():
            rel = f"parquet/{table}/date={unit}/part-g{gen:06d}.parquet"
            (marts / rel).parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(marts / rel)
            units.setdefault(table, {})[unit] = rel
    (marts / "_manifests").mkdir(parents=True, exist_ok=True)
    (marts / "_manifests" / f"gen-{gen:06d}.json").write_text(
        json.dumps({"generation": gen, "published_at_s": published_at_s, "tables": units}))
