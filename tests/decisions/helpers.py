"""Small builders for frames and SitePower used by the decision tests."""

from __future__ import annotations

from schemas.events import SitePower
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame


def meters(ts: float, values: dict[str, float], seq: int = 0, site: str = "s1") -> MeterFrame:
    return MeterFrame(
        site_id=site,
        source_id="gw-1",
        ts_s=ts,
        seq=seq,
        meter_id=list(values),
        power_w=list(values.values()),
        energy_wh=[None] * len(values),
    )


def gpus(ts: float, node: str, powers: list[float], seq: int = 0) -> GpuFrame:
    return GpuFrame(
        site_id="s1",
        source_id=node,
        ts_s=ts,
        seq=seq,
        node_id=[node] * len(powers),
        gpu_index=list(range(len(powers))),
        power_w=powers,
        energy_mj=[None] * len(powers),
    )


def asics(
    ts: float,
    models: list[str],
    hashrates: list[float],
    powers: list[float | None],
    seq: int = 0,
    temps: list[float | None] | None = None,
    states: list[str] | None = None,
    ids: list[str] | None = None,
) -> AsicFrame:
    n = len(models)
    return AsicFrame(
        site_id="s1",
        source_id="rack-1",
        ts_s=ts,
        seq=seq,
        miner_id=ids or [f"m{i}" for i in range(n)],
        model=models,
        hashrate_ths=hashrates,
        power_w=powers,
        temp_c=temps or [60.0] * n,
        fan_rpm=[3000] * n,
        state=states or ["hashing"] * n,  # type: ignore[arg-type]
    )


def power(
    ts: int,
    *,
    ai: float = 30_000.0,
    mining: float = 60_000.0,
    overhead: float = 5_000.0,
    contract: float = 120_000.0,
    poi: float | None = None,
    flags: list[str] | None = None,
) -> SitePower:
    total = ai + mining + overhead
    return SitePower(
        site_id="s1",
        ts_s=ts,
        ai_w=ai,
        mining_w=mining,
        overhead_w=overhead,
        total_w=total,
        poi_meter_w=total if poi is None else poi,
        contract_w=contract,
        surplus_w=contract - ai - overhead,
        hashrate_ths=0.0,
        readings=1,
        flags=flags or [],
        emitted_s=float(ts),
    )
