"""Site configuration, published on the compacted ``site.config.v1`` topic keyed by site id.

The same structure is what a site TOML file (``infra/sites/*.toml``) is validated into.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.base import Message


class ContractBlock(msgspec.Struct, kw_only=True, frozen=True):
    """Forward-bought power for a time block, applied per settlement interval.

    A position, not a ceiling: load above it is bought at the real-time price
    (``docs/settlement.md``)."""

    start_s: float
    end_s: float
    mw: float
    price_usd_per_mwh: float
    settlement_point: str | None = None
    """Where the block delivers, e.g. ``HB_WEST``; None: ``SiteConfig.contract_settlement_point``,
    else the site's own point (no basis)."""


class AsicModel(msgspec.Struct, kw_only=True, frozen=True):
    """One miner model in the fleet."""

    model: str
    count: int
    hashrate_ths: float
    j_per_th: float
    firmware: Literal["stock", "braiins", "luxos", "vnish", "whatsminer"] = "stock"
    ramp_down_s: float = 5.0
    ramp_up_s: float = 60.0

    @property
    def power_w(self) -> float:
        return self.hashrate_ths * self.j_per_th


class GpuPool(msgspec.Struct, kw_only=True, frozen=True):
    """A group of identical GPU nodes."""

    name: str
    nodes: int
    gpus_per_node: int
    gpu_model: str
    gpu_power_limit_w: float
    node_overhead_w: float = 1500.0
    """CPUs, NICs, fans of one node beyond its GPUs."""


class Meter(msgspec.Struct, kw_only=True, frozen=True):
    meter_id: str
    role: Literal["poi", "ai", "mining", "aux"]
    """``poi``: revenue meter at the point of interconnection."""


class PeakWindow(msgspec.Struct, kw_only=True, frozen=True):
    """A 4CP peak-risk window (local time of day, on the given dates)."""

    start_s: float
    end_s: float


class CurtailmentPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """Thresholds and hysteresis of the curtailment controller."""

    hashprice_usd_per_ph_day: float = 50.0
    price_margin_usd_per_mwh: float = 0.0
    """Curtail a model when price > breakeven + margin; resume when price < breakeven - margin."""
    economic_confirm_intervals: int = 1
    """Price intervals above breakeven before curtailing (Foreman: 2 five-minute windows)."""
    under_frequency_hz: float = 59.7
    site_limit_headroom_mw: float = 2.0
    response_deadline_s: float = 60.0
    restore_step_mw: float = 20.0
    """Mining power brought back per restore step when triggers clear."""
    restore_step_s: float = 30.0
    peak_windows: list[PeakWindow] = []
    pool_fee_fraction: float = 0.0
    """Pool fee taken from gross hashprice (FPPS pools charge about 0.02-0.04)."""
    cost_adder_usd_per_mwh: float = 0.0
    """Site costs per MWh mined besides power (hosting, O&M): lowers every breakeven."""
    restart_cost_usd_per_mw: float = 0.0
    """Cost of one sleep-and-wake cycle per MW of miners (lost hashing while ramping,
    wear); spread over ``restart_amortize_h`` it raises the price needed to curtail."""
    restart_amortize_h: float = 1.0
    price_max_age_s: float = 1200.0
    """A decision price older than this (since its publication) is stale: alert, and the
    economic trigger holds its state. 4 missed SCED runs after the 5-min posting lag."""
    hashprice_max_age_s: float = 3 * 86400.0
    """A hashprice feed value older than this is stale (daily network data: 3 days)."""
    site_limit_release_fraction: float = 0.02
    """Site limit clears only when AI + overhead + baseline fit under the limit less this
    share of it (hysteresis: steady load near the limit gives steady commands)."""
    site_limit_min_dwell_s: float = 300.0
    """A site-limit trigger stays on at least this long once on."""


Staleness = Annotated[float, msgspec.Meta(ge=1.0)]
"""A reading holds at least for its own second."""


class MaxStaleness(msgspec.Struct, kw_only=True, frozen=True):
    """How long a source's reading holds, per source kind, s (``docs/cadence.md``).

    A reading holds until the source's next one; at second ``s`` a reading stamped ``t`` is
    used while ``s - t < limit``, after that the source is a gap (``SitePower.stale_sources``).
    Defaults are three polls of each collector's default period, so that two missed polls
    in a row are carried and a third is reported; set them to three polls of the site's
    real period (a 60 s replay scrape: ``asic_s = 180``).
    """

    gpu_s: Staleness = 3.0
    """NVML sampler (``streams.collectors``): one reading a second."""
    asic_s: Staleness = 15.0
    """ASIC collector: polls every 5 s by default."""
    meter_s: Staleness = 3.0
    """Modbus meter gateway: one reading a second."""


class SiteConfig(Message, kw_only=True):
    """Everything the real-time agents and the marts need to know about one site."""

    site_id: str
    name: str
    market: str = "ERCOT"
    settlement_point: str
    timezone: str = "America/Chicago"
    interconnection_limit_mw: float
    contract: list[ContractBlock]
    gpu_pools: list[GpuPool]
    asic_models: list[AsicModel]
    meters: list[Meter]
    overhead_fixed_mw: float = 0.0
    overhead_fraction: float = 0.05
    """Cooling and losses as a fraction of IT load (PUE - 1)."""
    policy: CurtailmentPolicy = CurtailmentPolicy()
    meter_tolerance_fraction: float = 0.03
    """Device sums and sub-meters may differ by this much before an alert."""
    max_staleness: MaxStaleness = MaxStaleness()
    """Sample-and-hold limit per source kind (readings at any cadence)."""
    contract_settlement_point: str | None = None
    """Settlement point of the contract blocks that name none, usually a hub (``HB_WEST``):
    the hub-to-load-zone basis is then settled; None: the site's own point."""
    day_ahead_file: str | None = None
    """CSV of hourly day-ahead trades (``transforms.positions.read_day_ahead_csv``)."""
    ancillary_awards_file: str | None = None
    """CSV of hourly ancillary awards (``transforms.ancillary.read_awards_csv``)."""
    mcpc_files: list[str] = []
    """ERCOT MCPC files (DAM np4-188-cd, RT np6-331-cd, or gridstatus layouts) pricing the
    awards that carry no clearing price."""
    four_cp_method: Literal["4CP", "12CP"] = "4CP"
    """Transmission cost allocation: 4CP (June-September peaks) or 12CP (every month)."""
    four_cp_peaks_file: str | None = None
    """ERCOT's posted peak intervals (``Year,June,...`` local interval ends,
    ``transforms.four_cp.read_posted_peaks``); None: no 4CP accrual."""
    transmission_rate_usd_per_kw_year: float = 0.0
    """Transmission charge per kW of the peak tag per year (the TDSP's 4CP rate)."""
    four_cp_risk_file: str | None = None
    """Peak-risk forecast CSV, ``interval_start_s,peak_probability`` or
    ``interval_start_s,forecast_mw`` (``transforms.four_cp.read_risk_file``), path relative
    to the site file. Its windows (``four_cp_method``'s months only) replace
    ``policy.peak_windows`` in the controller; None: the fixed list."""
    four_cp_risk_threshold: float = 0.5
    """A probability file's intervals at or above this probability are risk windows."""
    four_cp_forecast_margin_fraction: float = 0.02
    """A load forecast's intervals within this share of their month's highest forecast."""
    four_cp_risk_windows: list[PeakWindow] = []
    """Derived from ``four_cp_risk_file`` when the site file is loaded (never by hand)."""
    updated_s: float = 0.0

    def contracted_mw(self, ts_s: float) -> float:
        """Contracted power at ``ts_s`` (0 outside every block)."""
        for block in self.contract:
            if block.start_s <= ts_s < block.end_s:
                return block.mw
        return 0.0
