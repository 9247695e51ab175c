"""Which sites a grid signal concerns (the controller filters again, by kind and level)."""

from __future__ import annotations

from collections.abc import Mapping

from schemas.grid import DispatchSignal, FrequencySample, PriceSignal
from schemas.site import SiteConfig
from streams.agents.messages import DispatchIn, FrequencyIn, GridInput, PriceIn


def grid_targets(
    signal: PriceSignal | DispatchSignal | FrequencySample, sites: Mapping[str, SiteConfig]
) -> list[tuple[str, GridInput]]:
    """(site id, input) for every site ``signal`` concerns, sorted by site id.

    Prices go to the sites priced at their settlement point; a dispatch to its site, or to
    every site when it is system-wide (``site_id`` None); frequency to every site.
    """
    item: GridInput
    if isinstance(signal, PriceSignal):
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
