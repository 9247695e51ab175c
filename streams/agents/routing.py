"""Which sites a grid signal concerns (the controller filters again, by kind and level)."""

from __future__ import annotations

from collections.abc import Mapping

from schemas.grid import DispatchSignal, FrequencySample, HashpriceSignal, PriceSignal
from schemas.market_positions import AncillaryAward
from schemas.site import SiteConfig
from streams.agents.messages import (
    AwardIn,
    DispatchIn,
    FrequencyIn,
    GridInput,
    HashpriceFeedIn,
    PriceIn,
)

GridSignal = PriceSignal | DispatchSignal | FrequencySample | HashpriceSignal | AncillaryAward


def grid_targets(
    signal: GridSignal, sites: Mapping[str, SiteConfig]
) -> list[tuple[str, GridInput]]:
    """(site id, input) for every site ``signal`` concerns, sorted by site id.

    Prices go to the sites priced at their settlement point; a dispatch to its site, or to
    every site when it is system-wide (``site_id`` None); frequency and the network
    hashprice to every site; an ancillary award to its site.
    """
    item: GridInput
    if isinstance(signal, HashpriceSignal):
        item = HashpriceFeedIn(signal=signal)
        targets = list(sites)
    elif isinstance(signal, AncillaryAward):
        item = AwardIn(signal=signal)
        targets = [signal.site_id] if signal.site_id in sites else []
    elif isinstance(signal, PriceSignal):
        item = PriceIn(signal=signal)
        targets = [s for s, c in sites.items() if c.settlement_point == signal.settlement_point]
    elif isinstance(signal, DispatchSignal):
        item = DispatchIn(signal=signal)
        if signal.site_id is None:
            targets = list(sites)
        else:
            targets = [signal.site_id] if signal.site_id in sites else []
    else:
        item = FrequencyIn(signal=signal)
        targets = list(sites)
    return [(s, item) for s in sorted(targets)]
