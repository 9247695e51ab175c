"""Sources polled every P seconds, folded and combined as the agents do: what mining energy
the pipeline reports for a load that does not change.

``PYTHONPATH=. python tests/decisions/polling.py`` prints mining energy of one fixed load
at 1, 5 and 60 s polling next to the truth (run it from another checkout to compare).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from schemas.events import SitePower
from schemas.site import SiteConfig
from schemas.telemetry import AsicFrame
from streams.decisions.power import (
    CombineState,
    PartialState,
    SiteIndex,
    close_all,
    combine,
    fold_partials,
    index_site,
)


@dataclass(frozen=True)
class PolledSource:
    """One ASIC source: ``miners`` x ``miner_w``, polled every ``period_s`` from ``phase_s``."""

    source_id: str
    miner_w: float
    period_s: int
    phase_s: int = 0
    miners: int = 1

    @property
    def power_w(self) -> float:
        return self.miner_w * self.miners


def device_site(site: SiteConfig, asic_staleness_s: float) -> SiteConfig:
    """``site`` without meters (mining comes from device sums) and ASIC readings holding
    ``asic_staleness_s`` (skipped on a tree without sample-and-hold)."""
    site = msgspec.structs.replace(site, meters=[])
    if "max_staleness" in SiteConfig.__struct_fields__:
        raw = {**msgspec.to_builtins(site), "max_staleness": {"asic_s": asic_staleness_s}}
        site = msgspec.convert(raw, SiteConfig)
    return site


def poll(
    sources: Sequence[PolledSource],
    start_s: int,
    seconds: int,
    *,
    jitter_s: float = 0.0,
    missed: frozenset[tuple[str, int]] = frozenset(),
    site_id: str = "s1",
) -> list[list[AsicFrame]]:
    """Frames sent in each second of ``[start_s, start_s + seconds)``: a source polled at
    ``t`` is stamped ``t + jitter_s``; ``missed`` holds (source, second) polls lost."""
    out: list[list[AsicFrame]] = []
    for k in range(seconds):
        t = start_s + k
        frames = [
            AsicFrame(
                site_id=site_id,
                source_id=s.source_id,
                ts_s=t + jitter_s,
                seq=k,
                miner_id=[f"{s.source_id}-m{i}" for i in range(s.miners)],
                model=["S19"] * s.miners,
                hashrate_ths=[100.0] * s.miners,
                power_w=[s.miner_w] * s.miners,
                temp_c=[60.0] * s.miners,
                fan_rpm=[3000] * s.miners,
                state=["hashing"] * s.miners,
            )
            for s in sources
            if (k - s.phase_s) % s.period_s == 0 and (s.source_id, k) not in missed
        ]
        out.append(frames)
    return out


def run(
    index: SiteIndex, frames_by_second: Sequence[Sequence[AsicFrame]], lateness_s: int = 2
) -> list[SitePower]:
    """Stage 1 then stage 2, one batch per second, and the end of input closes the rest."""
    pstate, cstate = PartialState(), CombineState()
    sites = {index.site_id: index}
    powers: list[SitePower] = []
    for frames in frames_by_second:
        pstate, folded = fold_partials(
            pstate, frames, sites, source_partition="t:0", lateness_s=lateness_s
        )
        cstate, combined = combine(cstate, folded.partials, sites, now_s=0.0)
        powers.extend(combined.powers)
    cstate, combined = close_all(cstate, sites, now_s=0.0)
    powers.extend(combined.powers)
    return powers


def mining_wh(powers: Sequence[SitePower], start_s: int, seconds: int) -> float:
    return math.fsum(p.mining_w for p in powers if start_s <= p.ts_s < start_s + seconds) / 3600


def main() -> None:
    from tests.decisions.conftest import T0, make_site

    # 10 racks of 100 miners at 3,250 W: 3.25 MW of mining. The hour measured starts a
    # minute into the input and ends a minute before its end, clear of the edges (the bound
    # of docs/cadence.md is for a window cut in the middle of a stream's first poll).
    hour = 3600
    site = device_site(make_site(), asic_staleness_s=180.0)
    truth_wh = 10 * 100 * 3250.0 * hour / 3600
    print(f"mining energy of one hour, 10 racks x 100 miners x 3,250 W (truth {truth_wh:,.0f} Wh)")
    for period in (1, 5, 60):
        racks = [PolledSource(f"rack-{r}", 3250.0, period, r % period, 100) for r in range(10)]
        powers = run(index_site(site), poll(racks, T0, hour + 120, jitter_s=0.25))
        wh = mining_wh(powers, T0 + 60, hour)
        print(f"  poll every {period:>2} s: {wh:>12,.0f} Wh  ({wh / truth_wh:.4f} of truth)")


if __name__ == "__main__":
    main()
