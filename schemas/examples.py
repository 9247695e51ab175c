"""One valid example message per topic: documentation, and the round-trip tests' input."""

from __future__ import annotations

from typing import Any

from schemas.actuation import actuation_examples
from schemas.deadletter import DeadLetter
from schemas.events import (
    Alert,
    CurtailmentEvent,
    MinerCommand,
    SitePower,
    SitePowerPartial,
    SurplusEvent,
)
from schemas.grid import (
    CarbonIntensity,
    DispatchSignal,
    FrequencySample,
    FuelMix,
    HashpriceSignal,
    PriceSignal,
)
from schemas.restatement import SitePowerRestatement
from schemas.site import AsicModel, ContractBlock, GpuPool, Meter, SiteConfig
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame


def examples(now_s: float) -> dict[str, Any]:
    """A valid message for every topic, stamped around ``now_s``."""
    t = float(int(now_s))
    return {
        "telemetry.meter.v1": MeterFrame(
            site_id="demo",
            source_id="modbus-gw-1",
            ts_s=t,
            seq=1,
            meter_id=["poi", "ai", "mining"],
            power_w=[3.1e8, 1.9e8, 1.1e8],
            energy_wh=[1.2e9, 7.0e8, None],
        ),
        "telemetry.gpu.v1": GpuFrame(
            site_id="demo",
            source_id="rack-001",
            ts_s=t,
            seq=1,
            node_id=["n0001", "n0001"],
            gpu_index=[0, 1],
            power_w=[612.5, 598.0],
            energy_mj=[81_234_567_890, 80_999_000_111],
            util_pct=[97.0, 96.0],
            temp_c=[61.0, 63.0],
            power_limit_w=[700.0, 700.0],
        ),
        "telemetry.asic.v1": AsicFrame(
            site_id="demo",
            source_id="container-07",
            ts_s=t,
            seq=1,
            miner_id=["demo-S21-00001", "demo-S19jPro-00002"],
            model=["S21", "S19jPro"],
            hashrate_ths=[199.2, 101.7],
            power_w=[3480.0, None],
            temp_c=[71.0, 78.5],
            fan_rpm=[4200, 5100],
            state=["hashing", "hashing"],
        ),
        "grid.prices.v1": PriceSignal(
            market="ERCOT",
            settlement_point="LZ_WEST",
            kind="rt",
            interval_start_s=t - t % 900,
            interval_end_s=t - t % 900 + 900,
            price_usd_per_mwh=42.17,
        ),
        "grid.dispatch.v1": DispatchSignal(
            event_id="ercot-ecrs-0001",
            site_id="demo",
            kind="ecrs",
            reduce_to_mw=20.0,
            start_s=t,
            response_deadline_s=600.0,
        ),
        "grid.frequency.v1": FrequencySample(source_id="poi-pmu", ts_s=t, freq_hz=59.98),
        # Yesterday's network value, published at the end of its day.
        "grid.hashprice.v1": HashpriceSignal(
            source="coinmetrics", ts_s=t - 86_400.0, published_s=t, usd_per_ph_day=52.4
        ),
        "grid.carbon.v1": CarbonIntensity(
            region="ERCOT",
            kind="average",
            hour_start_s=t - t % 3600,
            intensity_g_per_kwh=347.2,
            source="example",
        ),
        "grid.fuelmix.v1": FuelMix(
            region="ERCOT",
            interval_start_s=t - t % 900,
            interval_end_s=t - t % 900 + 900,
            generation_mw={"Gas": 21000.0, "Wind": 15000.0, "Solar": 9000.0},
        ),
        "site.config.v1": SiteConfig(
            site_id="demo",
            name="Demo site",
            settlement_point="LZ_WEST",
            interconnection_limit_mw=420.0,
            contract=[ContractBlock(start_s=0.0, end_s=4e9, mw=400.0, price_usd_per_mwh=38.0)],
            gpu_pools=[
                GpuPool(
                    name="train",
                    nodes=10,
                    gpus_per_node=8,
                    gpu_model="H100-SXM",
                    gpu_power_limit_w=700.0,
                )
            ],
            asic_models=[AsicModel(model="S21", count=100, hashrate_ths=200.0, j_per_th=17.5)],
            meters=[
                Meter(meter_id="poi", role="poi"),
                Meter(meter_id="ai", role="ai"),
                Meter(meter_id="mining", role="mining"),
            ],
        ),
        "site.power.partial.v1": SitePowerPartial(
            site_id="demo",
            ts_s=int(t),
            source_partition="telemetry.gpu.v1:0",
            ai_w=1.9e8,
            readings=1200,
        ),
        "site.power.v1": SitePower(
            site_id="demo",
            ts_s=int(t),
            ai_w=1.9e8,
            mining_w=1.1e8,
            overhead_w=1.0e7,
            total_w=3.1e8,
            poi_meter_w=3.1e8,
            contract_w=4.0e8,
            surplus_w=2.0e8,
            hashrate_ths=5.5e6,
            readings=300_000,
            emitted_s=t + 0.2,
        ),
        "site.power.restated.v1": SitePowerRestatement(
            site_id="demo",
            ts_s=int(t) - 10,
            power=SitePower(
                site_id="demo",
                ts_s=int(t) - 10,
                ai_w=1.9e8,
                mining_w=1.1e8,
                overhead_w=1.0e7,
                total_w=3.1e8,
                poi_meter_w=3.1e8,
                contract_w=4.0e8,
                surplus_w=2.0e8,
                hashrate_ths=5.5e6,
                readings=300_020,
                late_readings=20,
                flags=["restated"],
                emitted_s=t + 0.1,
            ),
            late_readings=20,
            restated_at_s=t + 0.1,
        ),
        "surplus.events.v1": SurplusEvent(
            event_id="demo-surplus-1",
            site_id="demo",
            kind="open",
            ts_s=t,
            start_s=t,
            end_s=None,
            surplus_w=2.0e8,
            absorbed_w=1.1e8,
            unabsorbed_w=9.0e7,
            energy_wh=0.0,
            absorbed_wh=0.0,
            unabsorbed_wh=0.0,
        ),
        "curtailment.events.v1": CurtailmentEvent(
            event_id="demo-curt-1",
            site_id="demo",
            kind="issued",
            reasons=["economic", "grid"],
            reason_details=["RT $412.50 > S19jPro breakeven $70.62", "ECRS deployment"],
            issued_at_s=t,
            target_mining_w=2.0e7,
            baseline_mining_w=1.1e8,
            deadline_s=t + 600,
            ts_s=t,
        ),
        "miners.commands.v1": MinerCommand(
            command_id="demo-cmd-1",
            site_id="demo",
            event_id="demo-curt-1",
            issued_at_s=t,
            action="sleep",
            miner_ids=["demo-S19jPro-00002"],
            priority=0,
            deadline_s=t + 600,
        ),
        "alerts.v1": Alert(
            alert_id=f"demo/meter_silent/poi/{int(t)}",
            site_id="demo",
            condition="meter_silent",
            subject="poi",
            severity="critical",
            state="firing",
            started_at_s=t,
            message="revenue meter poi silent for 10 s",
            context={"last_seen_s": t - 10},
        ),
        "deadletter.v1": DeadLetter(
            source_topic="telemetry.gpu.v1",
            partition=0,
            offset=42,
            key_b64=None,
            value_b64="bm90IGpzb24=",
            kind="not_json",
            reason="not valid JSON",
            failed_at_s=t,
            consumer="example",
        ),
        **actuation_examples(t),
    }
