"""A tiny site for the decision tests; numbers chosen so that results derive by hand.

- ASICs: S19 10 x 100 TH x 30 J/TH (3,000 W each, 30 kW) and S21 10 x 200 TH x 15 J/TH
  (3,000 W each, 30 kW): fleet 60 kW. At hashprice $36/PH/day the breakevens are
  36 / (0.024 x 30) = $50.00/MWh (S19) and 36 / (0.024 x 15) = $100.00/MWh (S21).
- GPUs: pool h100 2 nodes x 4 GPUs (node overhead 1,000 W), pool l40 1 node x 2 GPUs
  (node overhead 400 W).
- Meters m-poi (poi), m-ai (ai), m-mine (mining).
- Contract 0.12 MW over 2025-2026; interconnection 0.15 MW; headroom 0.01 MW, so the site
  limit is 0.15 - 0.01 = 0.14 MW (the contract is a position, not a ceiling: issue #23).
"""

from __future__ import annotations

import pytest

from schemas.site import (
    AsicModel,
    ContractBlock,
    CurtailmentPolicy,
    GpuPool,
    Meter,
    PeakWindow,
    SiteConfig,
)
from streams.decisions.fleet import Fleet, fleet_roster
from streams.decisions.power import SiteIndex, index_site

T0 = 1_760_000_400
"""2025-10-09T09:00:00Z, a 15-minute interval boundary (T0 % 900 == 0)."""
PEAK_START = T0 + 10_000
PEAK_END = PEAK_START + 900


def make_site(**policy_overrides: object) -> SiteConfig:
    policy = {
        "hashprice_usd_per_ph_day": 36.0,
        "price_margin_usd_per_mwh": 0.0,
        "economic_confirm_intervals": 2,
        "under_frequency_hz": 59.7,
        "site_limit_headroom_mw": 0.01,
        "response_deadline_s": 60.0,
        "restore_step_mw": 0.015,
        "restore_step_s": 30.0,
        "peak_windows": [PeakWindow(start_s=PEAK_START, end_s=PEAK_END)],
    }
    policy.update(policy_overrides)
    return SiteConfig(
        site_id="s1",
        name="Test site",
        settlement_point="LZ_WEST",
        interconnection_limit_mw=0.15,
        contract=[
            ContractBlock(
                start_s=1_735_689_600, end_s=1_798_761_600, mw=0.12, price_usd_per_mwh=40.0
            )
        ],
        gpu_pools=[
            GpuPool(
                name="h100",
                nodes=2,
                gpus_per_node=4,
                gpu_model="H100-SXM",
                gpu_power_limit_w=700.0,
                node_overhead_w=1000.0,
            ),
            GpuPool(
                name="l40",
                nodes=1,
                gpus_per_node=2,
                gpu_model="L40S",
                gpu_power_limit_w=350.0,
                node_overhead_w=400.0,
            ),
        ],
        asic_models=[
            AsicModel(model="S21", count=10, hashrate_ths=200.0, j_per_th=15.0),
            AsicModel(model="S19", count=10, hashrate_ths=100.0, j_per_th=30.0),
        ],
        meters=[
            Meter(meter_id="m-poi", role="poi"),
            Meter(meter_id="m-ai", role="ai"),
            Meter(meter_id="m-mine", role="mining"),
        ],
        overhead_fixed_mw=0.0,
        overhead_fraction=0.05,
        policy=CurtailmentPolicy(**policy),  # type: ignore[arg-type]
        meter_tolerance_fraction=0.03,
    )


@pytest.fixture
def site() -> SiteConfig:
    return make_site()


@pytest.fixture
def fleet(site: SiteConfig) -> Fleet:
    return fleet_roster(site)


@pytest.fixture
def index(site: SiteConfig) -> SiteIndex:
    return index_site(site)
