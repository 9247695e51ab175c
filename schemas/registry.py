"""Which contract each topic carries. Topic names here are base names, before any namespace."""

from __future__ import annotations

from typing import Any

from schemas.actuation import ActuationOutcome, AuditEvent, CommandInForce, SitePause
from schemas.base import Message
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
from schemas.restatement import RESTATED_TOPIC, SitePowerRestatement, check_restatement_message
from schemas.site import SiteConfig
from schemas.validation import (
    ASIC_CONTRACT,
    GPU_CONTRACT,
    METER_CONTRACT,
    Contract,
    check_carbon,
    check_dispatch,
    check_frequency,
    check_hashprice,
    check_price,
    check_site_power,
)

CONTRACTS: dict[str, Contract[Any]] = {
    "telemetry.meter.v1": METER_CONTRACT,
    "telemetry.gpu.v1": GPU_CONTRACT,
    "telemetry.asic.v1": ASIC_CONTRACT,
    "grid.prices.v1": Contract(PriceSignal, [check_price]),
    "grid.dispatch.v1": Contract(DispatchSignal, [check_dispatch]),
    "grid.frequency.v1": Contract(FrequencySample, [check_frequency]),
    "grid.hashprice.v1": Contract(HashpriceSignal, [check_hashprice]),
    "grid.carbon.v1": Contract(CarbonIntensity, [check_carbon]),
    "grid.fuelmix.v1": Contract(FuelMix),
    "site.config.v1": Contract(SiteConfig),
    "site.power.partial.v1": Contract(SitePowerPartial),
    "site.power.v1": Contract(SitePower, [check_site_power]),
    RESTATED_TOPIC: Contract(SitePowerRestatement, [check_restatement_message]),
    "surplus.events.v1": Contract(SurplusEvent),
    "curtailment.events.v1": Contract(CurtailmentEvent),
    "miners.commands.v1": Contract(MinerCommand),
    "alerts.v1": Contract(Alert),
    "actuation.outcomes.v1": Contract(ActuationOutcome),
    "actuation.in_force.v1": Contract(CommandInForce),
    "actuation.audit.v1": Contract(AuditEvent),
    "actuation.pause.v1": Contract(SitePause),
    "deadletter.v1": Contract(DeadLetter),
}


def contract_for(base_topic: str) -> Contract[Any]:
    try:
        return CONTRACTS[base_topic]
    except KeyError:
        known = ", ".join(sorted(CONTRACTS))
        raise KeyError(f"no contract for topic {base_topic!r}; known topics: {known}") from None


def message_types() -> dict[str, type[Message]]:
    return {topic: c.type for topic, c in CONTRACTS.items()}
