"""ASIC miners, vectorised over the fleet: commands move a target, power ramps towards it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from schemas.events import MinerCommand
from schemas.site import SiteConfig
from streams.decisions.fleet import fleet_roster
from streams.sim.spec import SimSpec

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

SLEEP_W = 12.0
"""Control board of a sleeping miner (hashboards and PSU output off)."""
OFFLINE_SHARE = 0.002
"""Miners that do not answer a scrape at all (broken, rebooting)."""
NORMAL, LATE, NEVER = 0, 1, 2


@dataclass(frozen=True)
class AsicRack:
    source_id: str
    start: int
    stop: int
    miner_ids: list[str]
    models: list[str]
    error: list[str | None] | None = None
    """Scrape errors (offline miners time out); None when every miner answers."""


@dataclass
class AsicColumns:
    hashrate_ths: list[float]
    power_w: list[float | None]
    temp_c: list[float | None]
    fan_rpm: list[int | None]
    state: list[str]
    power_limit_w: list[float | None]


@dataclass(frozen=True)
class CommandResult:
    applied: int
    """Miners that start acting now."""
    late: int
    ignored: int
    unknown: int
    """Ids not in this site's roster."""


class AsicFleet:
    def __init__(self, site: SiteConfig, sim: SimSpec, rng: np.random.Generator) -> None:
        self.rng = rng
        self.late_delay_s = sim.late_delay_s
        ids: list[str] = []
        models: list[str] = []
        nominal_w: list[float] = []
        nominal_ths: list[float] = []
        down: list[float] = []
        up: list[float] = []
        reports: list[bool] = []
        self.racks: list[AsicRack] = []
        # Roster order (least efficient model first) so ids match the controller's.
        for fm in fleet_roster(site).models:
            for r0 in range(0, len(fm.miner_ids), sim.miners_per_rack):
                chunk = fm.miner_ids[r0 : r0 + sim.miners_per_rack]
                self.racks.append(
                    AsicRack(
                        source_id=f"{site.site_id}-{fm.model}-rack{r0 // sim.miners_per_rack:04d}",
                        start=len(ids),
                        stop=len(ids) + len(chunk),
                        miner_ids=list(chunk),
                        models=[fm.model] * len(chunk),
                    )
                )
                ids.extend(chunk)
                models.extend([fm.model] * len(chunk))
            n = len(fm.miner_ids)
            nominal_w.extend([fm.power_w] * n)
            nominal_ths.extend([fm.hashrate_ths] * n)
            down.extend([fm.ramp_down_s] * n)
            up.extend([fm.ramp_up_s] * n)
            reports.extend([fm.firmware != "stock"] * n)
        self.n = len(ids)
        self.index = {m: i for i, m in enumerate(ids)}
        self.miner_ids = ids
        # Units differ a few percent from nameplate (chip binning, PSU efficiency).
        self.nominal_w: F64 = np.asarray(nominal_w) * rng.normal(1.0, 0.02, self.n)
        self.nominal_ths: F64 = np.asarray(nominal_ths) * rng.normal(1.0, 0.015, self.n)
        self.down_per_s: F64 = 1.0 / np.asarray(down, dtype=np.float64)
        self.up_per_s: F64 = 1.0 / np.asarray(up, dtype=np.float64)
        self.reports_power: B = np.asarray(reports, dtype=bool)
        u = rng.random(self.n)
        self.response: I64 = np.where(
            u < sim.never_share, NEVER, np.where(u < sim.never_share + sim.late_share, LATE, NORMAL)
        ).astype(np.int64)
        self.offline: B = rng.random(self.n) < OFFLINE_SHARE
        # Offline miners stay offline for the run, so each rack's error column is constant.
        for i, r in enumerate(self.racks):
            off = self.offline[r.start : r.stop]
            if off.any():
                err: list[str | None] = ["timeout" if o else None for o in off.tolist()]
                self.racks[i] = replace(r, error=err)
        self.level: F64 = np.where(self.offline, 0.0, 1.0)
        self.target: F64 = self.level.copy()
        self.limit_frac: F64 = np.ones(self.n)
        self.pending: F64 = np.full(self.n, np.nan)
        self.pending_at: F64 = np.full(self.n, np.inf)
        self.temp: F64 = np.where(self.offline, 25.0, 75.0) + rng.normal(0, 2, self.n)
        self.power_w: F64 = self.power_now()

    def command(self, cmd: MinerCommand, now_s: float) -> CommandResult:
        idx_list = [self.index[m] for m in cmd.miner_ids if m in self.index]
        unknown = len(cmd.miner_ids) - len(idx_list)
        idx = np.asarray(idx_list, dtype=np.int64)
        if cmd.action == "sleep":
            goal = np.zeros(len(idx))
        elif cmd.action == "wake":
            goal = self.limit_frac[idx]
        else:
            if cmd.power_limit_w is None:
                raise ValueError(f"command {cmd.command_id}: set_power without power_limit_w")
            goal = np.clip(cmd.power_limit_w / self.nominal_w[idx], 0.0, 1.0)
        kind = self.response[idx]
        now = idx[kind == NORMAL]
        late = idx[kind == LATE]
        if cmd.action == "set_power":
            self.limit_frac[idx[kind != NEVER]] = goal[kind != NEVER]
        self.target[now] = goal[kind == NORMAL]
        self.pending[now] = np.nan
        self.pending_at[now] = np.inf
        self.pending[late] = goal[kind == LATE]
        self.pending_at[late] = now_s + self.late_delay_s
        return CommandResult(
            applied=len(now), late=len(late), ignored=int((kind == NEVER).sum()), unknown=unknown
        )

    def power_now(self) -> F64:
        running = SLEEP_W + (self.nominal_w - SLEEP_W) * self.level
        return np.where(self.offline, 0.0, running)

    def step(self, t_s: float) -> AsicColumns:
        due = self.pending_at <= t_s
        if due.any():
            self.target[due] = self.pending[due]
            self.pending_at[due] = np.inf
        self.target[self.offline] = 0.0
        # Linear ramps: a full swing down takes ramp_down_s, back up ramp_up_s.
        delta = np.clip(self.target - self.level, -self.down_per_s, self.up_per_s)
        self.level = np.clip(self.level + delta, 0.0, 1.0)
        self.power_w = self.power_now()
        n = self.n
        noise = self.rng.standard_normal((2, n))
        hashing = self.level > 0
        ths = np.where(hashing, self.nominal_ths * self.level * (1 + 0.02 * noise[0]), 0.0)
        self.temp += (np.where(hashing, 45.0 + 30.0 * self.level, 30.0) - self.temp) / 30.0
        fans = np.where(hashing, 2000 + 4000 * self.level, 0).astype(np.int64)
        reported = np.round(self.power_w * (1 + 0.01 * noise[1]))
        settled = np.abs(self.level - self.target) < 1e-9
        state = np.where(
            self.offline,
            "offline",
            np.where(~settled, "ramping", np.where(hashing, "hashing", "sleeping")),
        )
        power_col: list[float | None]
        temp_col: list[float | None] = np.round(self.temp, 1).tolist()
        fan_col: list[int | None] = fans.tolist()
        if self.reports_power.all() and not self.offline.any():
            power_col = reported.tolist()
        else:
            # Stock firmware reports no wattage; an offline miner reports nothing at all.
            power_col = [
                p if ok else None
                for p, ok in zip(
                    reported.tolist(), (self.reports_power & ~self.offline).tolist(), strict=True
                )
            ]
            for i in np.flatnonzero(self.offline).tolist():
                temp_col[i] = None
                fan_col[i] = None
        limit = self.nominal_w * self.limit_frac
        limit_col: list[float | None] = [
            round(x) if ok else None
            for x, ok in zip(limit.tolist(), self.reports_power.tolist(), strict=True)
        ]
        return AsicColumns(
            hashrate_ths=np.round(ths, 2).tolist(),
            power_w=power_col,
            temp_c=temp_col,
            fan_rpm=fan_col,
            state=state.tolist(),
            power_limit_w=limit_col,
        )
