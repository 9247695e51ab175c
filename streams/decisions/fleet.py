"""The miner roster: which miner ids exist, by model, least efficient model first.

Id scheme (shared with the simulator, which calls the same function):
``f"{site_id}-{model}-{i:05d}"`` for ``i`` in ``0 .. count-1`` of each ``AsicModel``, in
the order ``SiteConfig.asic_models`` lists them. The curtailment controller sleeps the
lowest indices of a model first (``miner_ids[:k]``) and wakes them in reverse.
"""

from __future__ import annotations

import msgspec

from schemas.site import SiteConfig


class FleetModel(msgspec.Struct, kw_only=True, frozen=True):
    """All miners of one model."""

    model: str
    j_per_th: float
    hashrate_ths: float
    """Nominal hashrate of one miner, TH/s."""
    power_w: float
    """Nameplate power of one miner (hashrate x J/TH), W."""
    firmware: str
    ramp_down_s: float
    ramp_up_s: float
    miner_ids: list[str]

    @property
    def total_w(self) -> float:
        return self.power_w * len(self.miner_ids)


class Fleet(msgspec.Struct, kw_only=True, frozen=True):
    """The miners of one site; ``models`` is sorted least efficient (highest J/TH) first."""

    site_id: str
    models: list[FleetModel]

    @property
    def total_w(self) -> float:
        return sum(m.total_w for m in self.models)

    def model(self, name: str) -> FleetModel:
        for m in self.models:
            if m.model == name:
                return m
        raise KeyError(f"fleet of site {self.site_id!r} has no ASIC model {name!r}")


def miner_id(site_id: str, model: str, index: int) -> str:
    """Id of the ``index``-th miner (0-based) of ``model`` at ``site_id``."""
    return f"{site_id}-{model}-{index:05d}"


def fleet_roster(site: SiteConfig) -> Fleet:
    """The site's miners with deterministic ids, least efficient model first.

    Ties in J/TH are broken by model name so that the order never depends on input order.
    """
    models = [
        FleetModel(
            model=m.model,
            j_per_th=m.j_per_th,
            hashrate_ths=m.hashrate_ths,
            power_w=m.power_w,
            firmware=m.firmware,
            ramp_down_s=m.ramp_down_s,
            ramp_up_s=m.ramp_up_s,
            miner_ids=[miner_id(site.site_id, m.model, i) for i in range(m.count)],
        )
        for m in site.asic_models
    ]
    models.sort(key=lambda fm: (-fm.j_per_th, fm.model))
    return Fleet(site_id=site.site_id, models=models)


def gpu_node_id(site_id: str, pool: str, index: int) -> str:
    """Id of the ``index``-th node (0-based) of GPU pool ``pool``: ``f"{site}-{pool}-{i:05d}"``.

    ``power.index_site`` maps a node back to its pool by stripping the last ``-NNNNN``.
    """
    return f"{site_id}-{pool}-{index:05d}"
