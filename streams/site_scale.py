"""Scale a site (devices, contract, limits) by a factor, keeping its proportions."""

from __future__ import annotations

from msgspec.structs import replace

from streams.site_file import SiteFile


def _n(count: int, factor: float) -> int:
    return max(1, round(count * factor))


def scale_site(site_file: SiteFile, factor: float) -> SiteFile:
    site, sim = site_file.site, site_file.sim
    scaled = replace(
        site,
        gpu_pools=[replace(p, nodes=_n(p.nodes, factor)) for p in site.gpu_pools],
        asic_models=[replace(m, count=_n(m.count, factor)) for m in site.asic_models],
        contract=[replace(b, mw=b.mw * factor) for b in site.contract],
        interconnection_limit_mw=site.interconnection_limit_mw * factor,
        overhead_fixed_mw=site.overhead_fixed_mw * factor,
        policy=replace(
            site.policy,
            site_limit_headroom_mw=site.policy.site_limit_headroom_mw * factor,
            restore_step_mw=site.policy.restore_step_mw * factor,
        ),
    )
    pools = {p.name: p.nodes for p in scaled.gpu_pools}
    jobs = []
    for job in sim.jobs:
        nodes = min(_n(job.nodes, factor), pools[job.pool])
        pools[job.pool] -= nodes
        if nodes > 0:
            jobs.append(replace(job, nodes=nodes))
    return replace(site_file, site=scaled, sim=replace(sim, jobs=jobs))
