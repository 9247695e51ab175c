"""A known input: seconds of the small site pre-encoded by the pure simulator model, a few
RT prices, and hostile messages that must end in the dead-letter topic.

Everything is built before anything is sent, from a seed and a start time only, so the
offline truth (``truth.py``) and the faulted run see the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgspec

from schemas.grid import PriceSignal
from schemas.site import ContractBlock, CurtailmentPolicy, SiteConfig
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame
from streams.sim.encode import FrameEncoder
from streams.sim.model import SiteModel
from streams.sim.spec import AiSpike, SimSpec
from streams.site_file import load_site

SMALL_SITE = Path(__file__).resolve().parents[2] / "infra" / "sites" / "small.toml"
INTERVAL_S = 900
PRICE_TOPIC = "grid.prices.v1"
TELEMETRY_TYPES: dict[str, type[MeterFrame | GpuFrame | AsicFrame]] = {
    "telemetry.meter.v1": MeterFrame,
    "telemetry.gpu.v1": GpuFrame,
    "telemetry.asic.v1": AsicFrame,
}


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    """Base topic name (no namespace)."""
    key: bytes
    value: bytes
    second: int
    """Index of the simulated second it belongs to (hostile and grid messages: where they
    are sent in the stream)."""
    hostile: str | None = None
    """Why it must be dead-lettered (None: a valid message)."""


@dataclass
class Scenario:
    site: SiteConfig
    start_s: int
    seconds: int
    messages: list[Message] = field(default_factory=list)
    prices: list[PriceSignal] = field(default_factory=list)

    def valid(self) -> list[Message]:
        return [m for m in self.messages if m.hostile is None]

    def hostile(self) -> list[Message]:
        return [m for m in self.messages if m.hostile is not None]

    def by_topic(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.messages:
            out[m.topic] = out.get(m.topic, 0) + 1
        return out


def fault_site(site_id: str = "faults") -> SiteConfig:
    """The small site cut to a 1.15 MW interconnection, with a 1.15 MW contract and 50 kW
    headroom: the AI spikes of the scenario push it over the interconnection less headroom
    (site-limit curtailments; the contract alone is a position, not a limit) and the rest
    of the time it has a surplus (surplus events)."""
    base = load_site(SMALL_SITE)
    return msgspec.structs.replace(
        base,
        site_id=site_id,
        interconnection_limit_mw=1.15,
        contract=[ContractBlock(start_s=0.0, end_s=4.0e9, mw=1.15, price_usd_per_mwh=40.0)],
        policy=CurtailmentPolicy(
            hashprice_usd_per_ph_day=50.0,
            site_limit_headroom_mw=0.05,
            restore_step_mw=0.2,
            restore_step_s=10.0,
        ),
    )


def _spikes(start_s: int, seconds: int) -> list[AiSpike]:
    """An AI spike of 40 s every 150 s of the scenario."""
    return [
        AiSpike(start_s=float(start_s + k), duration_s=40.0, fraction=0.97)
        for k in range(60, seconds, 150)
    ]


def _hostile(site_id: str, start_s: int, second: int) -> list[Message]:
    ts = float(start_s + second)
    enc = msgspec.json.encode
    unknown = MeterFrame(
        site_id="no-such-site",
        source_id="rogue",
        ts_s=ts,
        seq=1,
        meter_id=["POI-1"],
        power_w=[1.0],
        energy_wh=[None],
    )
    future = MeterFrame(
        site_id=site_id,
        source_id="future-gw",
        ts_s=ts + 86_400.0,
        seq=1,
        meter_id=["POI-1"],
        power_w=[1.0],
        energy_wh=[None],
    )
    return [
        Message("telemetry.gpu.v1", b"garbage", b"{not json at all", second, "undecodable"),
        Message("telemetry.asic.v1", b"empty", b"", second, "empty value"),
        Message(
            "telemetry.meter.v1",
            b"schema",
            b'{"site_id": "' + site_id.encode() + b'"}',
            second,
            "missing fields",
        ),
        Message("telemetry.meter.v1", b"future", enc(future), second, "stamped a day ahead"),
        Message("telemetry.meter.v1", b"rogue", enc(unknown), second, "unknown site"),
    ]


def build_scenario(
    seconds: int,
    start_s: int,
    *,
    seed: int = 7,
    site: SiteConfig | None = None,
    hostile_every_s: int = 97,
) -> Scenario:
    """``seconds`` of telemetry from ``start_s`` (a multiple of 900 keeps intervals whole),
    one RT price per 15-minute interval (sent first), hostile messages every
    ``hostile_every_s`` seconds."""
    site = site or fault_site()
    model = SiteModel(site, SimSpec(seed=seed, ai_spikes=_spikes(start_s, seconds)))
    encoder = FrameEncoder(model)
    sc = Scenario(site=site, start_s=start_s, seconds=seconds)
    first = start_s - start_s % INTERVAL_S
    for k, at in enumerate(range(first, start_s + seconds, INTERVAL_S)):
        # Below every model's breakeven (S21: 50 / (0.024 x 17.5) = 119 $/MWh), so prices
        # never trigger a curtailment and the controller's decisions do not depend on when
        # the price reaches it relative to the telemetry.
        price = Decimal("21.25") + Decimal(k) * Decimal("3.17")
        sig = PriceSignal(
            market=site.market,
            settlement_point=site.settlement_point,
            kind="rt",
            interval_start_s=float(at),
            interval_end_s=float(at + INTERVAL_S),
            price_usd_per_mwh=float(price),
            published_s=float(at),
        )
        sc.prices.append(sig)
        sc.messages.append(Message(PRICE_TOPIC, b"rt", msgspec.json.encode(sig), 0))
    for i in range(seconds):
        step = model.step(float(start_s + i))
        for topic, key, value in encoder.encode(step):
            sc.messages.append(Message(topic, key, value, i))
        if hostile_every_s and i % hostile_every_s == hostile_every_s // 2:
            sc.messages.extend(_hostile(site.site_id, start_s, i))
    return sc


def aligned_start(now_s: float, seconds: int, margin_s: int = 600) -> int:
    """A start on a 15-minute boundary that ends ``margin_s`` before ``now_s``."""
    latest = math.floor(now_s) - seconds - margin_s
    return latest - latest % INTERVAL_S
