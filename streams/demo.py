"""A few seconds of plausible site telemetry for the platform smoke run (not the simulator)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import msgspec

from schemas.grid import FrequencySample, PriceSignal
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame

_enc = msgspec.json.Encoder()
RACKS, NODES_PER_RACK, GPUS, ASIC_RACKS, MINERS_PER_RACK = 10, 4, 8, 5, 40


def demo_messages(start_s: float, seconds: int) -> Iterator[tuple[str, bytes, bytes, int]]:
    """(topic, key, value, readings) for ``seconds`` of a small site at 1 Hz."""
    for i in range(seconds):
        ts = float(int(start_s) + i)
        phase = 0.5 + 0.5 * math.sin(i / 5)
        ai_w = 0.0
        for r in range(RACKS):
            nodes = [f"n{r:03d}{k}" for k in range(NODES_PER_RACK) for _ in range(GPUS)]
            power = [300.0 + 350.0 * phase] * len(nodes)
            ai_w += sum(power)
            frame = GpuFrame(
                site_id="demo",
                source_id=f"rack-{r:03d}",
                ts_s=ts,
                seq=i,
                node_id=nodes,
                gpu_index=list(range(GPUS)) * NODES_PER_RACK,
                power_w=power,
                energy_mj=[int(1e9 + i * p * 1000) for p in power],
            )
            yield "telemetry.gpu.v1", frame.source_id.encode(), _enc.encode(frame), len(nodes)
        for r in range(ASIC_RACKS):
            ids = [f"demo-S21-{r * MINERS_PER_RACK + k:05d}" for k in range(MINERS_PER_RACK)]
            n = len(ids)
            frame_a = AsicFrame(
                site_id="demo",
                source_id=f"container-{r:02d}",
                ts_s=ts,
                seq=i,
                miner_id=ids,
                model=["S21"] * n,
                hashrate_ths=[200.0] * n,
                power_w=[None] * n,
                temp_c=[70.0] * n,
                fan_rpm=[4000] * n,
                state=["hashing"] * n,
            )
            yield "telemetry.asic.v1", frame_a.source_id.encode(), _enc.encode(frame_a), n
        mining_w = ASIC_RACKS * MINERS_PER_RACK * 3500.0
        meters = MeterFrame(
            site_id="demo",
            source_id="modbus-gw",
            ts_s=ts,
            seq=i,
            meter_id=["poi", "ai", "mining"],
            power_w=[1.05 * (ai_w + mining_w), ai_w, mining_w],
            energy_wh=[None, None, None],
        )
        yield "telemetry.meter.v1", b"modbus-gw", _enc.encode(meters), 3
        freq = FrequencySample(source_id="pmu", ts_s=ts, freq_hz=60.0 - 0.01 * phase)
        yield "grid.frequency.v1", b"pmu", _enc.encode(freq), 1
        if int(ts) % 900 == 0 or i == 0:
            start = ts - ts % 900
            price = PriceSignal(
                market="ERCOT",
                settlement_point="LZ_WEST",
                kind="rt",
                interval_start_s=start,
                interval_end_s=start + 900,
                price_usd_per_mwh=35.0 + 10 * phase,
            )
            yield "grid.prices.v1", b"LZ_WEST", _enc.encode(price), 1
    # One malformed frame, to show the dead-letter path in the summary.
    yield "telemetry.gpu.v1", b"rack-bad", b'{"v":1,"site_id":"demo","power_w":"oops"}', 0
