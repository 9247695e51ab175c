"""Deterministic test data for the mart sink: site seconds and telemetry frames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from schemas.events import Alert, SitePower
from schemas.grid import CarbonIntensity, PriceSignal
from schemas.site import ContractBlock, CurtailmentPolicy, Meter, SiteConfig
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame

ENC = msgspec.json.Encoder()


def site_second(site: str, ts: int, *, ai_w: float = 100e6, mining_w: float = 50e6,
                overhead_w: float = 10e6, contract_w: float = 200e6,
                poi: bool = True) -> SitePower:
    total = ai_w + mining_w + overhead_w
    return SitePower(site_id=site, ts_s=ts, ai_w=ai_w, mining_w=mining_w,
                     overhead_w=overhead_w, total_w=total, poi_meter_w=total if poi else None,
                     contract_w=contract_w, surplus_w=contract_w - ai_w - overhead_w,
                     hashrate_ths=1000.0, readings=10, emitted_s=float(ts) + 0.5)


def power_of(i: int, j: int) -> float:
    """A reading's power that is not a round number (exercises the exact decimal sum)."""
    return 300.0 + ((i * 7919 + j * 104729) % 10007) / 37.0


def gpu_frame(site: str, node: str, seq: int, ts: float, gpus: int = 4) -> GpuFrame:
    return GpuFrame(site_id=site, source_id=node, ts_s=ts, seq=seq, node_id=[node] * gpus,
                    gpu_index=list(range(gpus)),
                    power_w=[power_of(seq, g) for g in range(gpus)],
                    energy_mj=[seq * 400_000 + g for g in range(gpus)])


def meter_frame(site: str, source: str, seq: int, ts: float) -> MeterFrame:
    return MeterFrame(site_id=site, source_id=source, ts_s=ts, seq=seq,
                      meter_id=["poi", "ai"], power_w=[power_of(seq, 1) * 1e3, power_of(seq, 2)],
                      energy_wh=[1e6 + seq * 50.0, None if seq % 3 == 0 else 2e5 + seq])


def asic_frame(site: str, rack: str, seq: int, ts: float, miners: int = 3) -> AsicFrame:
    return AsicFrame(site_id=site, source_id=rack, ts_s=ts, seq=seq,
                     miner_id=[f"{rack}-m{k}" for k in range(miners)], model=["S21"] * miners,
                     hashrate_ths=[200.0 + power_of(seq, k) / 100 for k in range(miners)],
                     power_w=[None if k == 0 else power_of(seq, k) * 10 for k in range(miners)],
                     temp_c=[60.0] * miners, fan_rpm=[4000] * miners,
                     state=["hashing" if (seq + k) % 5 else "sleeping" for k in range(miners)])


def stream(start_s: int, seconds: int, *, site: str = "site-a", nodes: int = 3,
           racks: int = 2) -> Iterator[tuple[str, bytes, bytes]]:
    """(base topic, key, value) for ``seconds`` of one site: a SitePower per second and
    GPU, meter and ASIC frames every second."""
    for i in range(seconds):
        ts = start_s + i
        yield "site.power.v1", site.encode(), ENC.encode(site_second(site, ts))
        for n in range(nodes):
            node = f"node-{n}"
            yield "telemetry.gpu.v1", node.encode(), ENC.encode(gpu_frame(site, node, i, ts + 0.1))
        yield "telemetry.meter.v1", b"meters", ENC.encode(meter_frame(site, "meters", i, ts + 0.2))
        for r in range(racks):
            rack = f"rack-{r}"
            frame = asic_frame(site, rack, i, ts + 0.3)
            yield "telemetry.asic.v1", rack.encode(), ENC.encode(frame)


def extras(start_s: int) -> list[tuple[str, bytes, bytes]]:
    """One message for each of the other sink topics."""
    items: list[Any] = [
        ("grid.prices.v1", PriceSignal(market="ERCOT", settlement_point="LZ_WEST", kind="rt",
                                       interval_start_s=start_s, interval_end_s=start_s + 900,
                                       price_usd_per_mwh=42.123456789)),
        ("grid.carbon.v1", CarbonIntensity(region="ERCOT", kind="average", hour_start_s=start_s,
                                           intensity_g_per_kwh=400.0, source="test")),
        ("alerts.v1", Alert(alert_id=f"site-a/late_data/x/{start_s}", site_id="site-a",
                            condition="late_data", subject="x", severity="info",
                            state="firing", started_at_s=start_s, message="late",
                            context={"n": 3})),
    ]
    return [(t, b"k", ENC.encode(m)) for t, m in items]


def site_config(site: str, *, updated_s: float = 0.0, contract_mw: float = 200.0,
                contract_price: float = 30.5, hashprice: float = 50.0,
                settlement_point: str = "LZ_WEST") -> SiteConfig:
    """A site config with one contract block covering every test time."""
    return SiteConfig(
        site_id=site, name=f"site {site}", settlement_point=settlement_point,
        interconnection_limit_mw=420.0, updated_s=updated_s,
        contract=[ContractBlock(start_s=0.0, end_s=4e9, mw=contract_mw,
                                price_usd_per_mwh=contract_price)],
        gpu_pools=[], asic_models=[], meters=[Meter(meter_id="poi", role="poi")],
        policy=CurtailmentPolicy(hashprice_usd_per_ph_day=hashprice))


def rt_price(start_s: int, price: float, *, point: str = "LZ_WEST") -> PriceSignal:
    return PriceSignal(market="ERCOT", settlement_point=point, kind="rt",
                       interval_start_s=start_s, interval_end_s=start_s + 900,
                       price_usd_per_mwh=price)
