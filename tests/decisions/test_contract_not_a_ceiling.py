"""The forward contract is a position, not a ceiling (issue #23).

Site (conftest): contract 120 kW, interconnection 150 kW, headroom 10 kW, so the site limit
is 140 kW; S19 breakeven $50.00/MWh, S21 $100.00/MWh. Energy above the contract is bought at
the real-time price: at a low or negative price every miner earns more than it costs, so
only the physical limit may curtail. The code before took min(interconnection, contract) -
headroom = 110 kW and curtailed the 135 kW site below.
"""

from __future__ import annotations

import pytest

from streams.decisions.curtailment import (
    ControllerInput,
    ControllerOutput,
    ControllerState,
    Tick,
    controller_step,
)
from streams.decisions.fleet import fleet_roster

from .conftest import T0, make_site
from .helpers import power
from .test_curtailment import price


def _run(ai_w: float, price_usd: float) -> tuple[ControllerState, ControllerOutput]:
    """Two confirming prices, then ten seconds of the given draw (all 60 kW of miners on)."""
    site = make_site(peak_windows=[])
    inputs: list[ControllerInput] = [price(T0 - 300, price_usd), price(T0, price_usd)]
    inputs += [power(t, ai=ai_w, mining=60_000.0) for t in range(T0, T0 + 10)]
    inputs.append(Tick(ts_s=T0 + 10))
    return controller_step(ControllerState(site_id="s1"), inputs, site, fleet_roster(site))


@pytest.mark.parametrize("price_usd", [20.0, -15.0])
def test_above_contract_below_interconnection_is_not_curtailed(price_usd: float) -> None:
    # 70 + 5 + 60 = 135 kW: 15 kW above the contract, 5 kW under the 140 kW limit.
    state, out = _run(70_000.0, price_usd)
    assert (state.event, out.events, out.commands) == (None, [], [])
    assert not state.site_limit_active


@pytest.mark.parametrize("price_usd", [20.0, -15.0])
def test_above_interconnection_is_curtailed_at_any_price(price_usd: float) -> None:
    # 90 + 5 + 60 = 155 kW > 140 kW: ceiling 140 - 95 = 45 kW, whatever the price.
    state, out = _run(90_000.0, price_usd)
    issued = out.events[0]
    assert (issued.kind, issued.reasons, issued.target_mining_w) == (
        "issued",
        ["site_limit"],
        45_000.0,
    )
    assert issued.site_limit_w == 140_000.0 and issued.site_load_w == 155_000.0


def test_above_contract_the_price_decides() -> None:
    """$60/MWh is above S19's $50 breakeven: the economic trigger curtails S19, alone."""
    state, out = _run(70_000.0, 60.0)
    issued = out.events[0]
    assert (issued.reasons, issued.target_mining_w) == (["economic"], 30_000.0)
    assert not state.site_limit_active
