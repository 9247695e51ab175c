"""What the real-time agents emit: 1-second site power, surplus and curtailment events,
miner commands and alerts."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.base import Message


class SourceReading(msgspec.Struct, kw_only=True, frozen=True):
    """What one GPU or ASIC source (a collector's frame source, ``source_id``) contributed to
    one site-second: stage 2 holds it until the source's next reading (``docs/cadence.md``)."""

    ts_s: float
    """Stamp of the source's latest frame in the second (a later poll replaces an earlier)."""
    ai_w: float = 0.0
    """GPU power plus node overhead."""
    mining_w: float = 0.0
    mining_reported_w: float = 0.0
    hashrate_ths: float = 0.0
    readings: int = 0


class SitePowerPartial(Message, kw_only=True):
    """Per-partition partial sums for one site-second (internal repartition topic)."""

    site_id: str
    ts_s: int
    """Start of the second, UTC seconds."""
    source_partition: str
    """``<topic>:<partition>`` that summed these readings; later partials replace earlier."""
    ai_w: float = 0.0
    mining_w: float = 0.0
    mining_reported_w: float = 0.0
    """Mining power from miners that report wattage; the rest is estimated from the model."""
    meter_w: dict[str, float] = {}
    """Power by meter id."""
    meter_wh: dict[str, float] = {}
    """Energy register by meter id, Wh, of the meters whose register was read in this second
    (``MeterFrame.energy_wh``; not held from earlier seconds, unlike ``meter_w``)."""
    readings: int = 0
    hashrate_ths: float = 0.0
    max_reading_ts_s: float = 0.0
    ai_counter_wh: float = 0.0
    """GPU energy-counter steps of the frames stamped in this second, Wh
    (``GpuFrame.energy_step_mj``, only steps the power stage can place: see
    ``streams.decisions.power.gpu_counter_sums``). Energy, so counted for its second only."""
    ai_counter_sampled_wh: float = 0.0
    """What sample-and-hold held over those same steps (each GPU's ``step_power_w`` times the
    seconds it was held), Wh: the part of the AI samples the counters replace."""
    frames: int = 0
    """Distinct frames folded in; stage 2 closes a second once every partition has sent as
    many as it did for the last second (0: unknown, the second waits for its lateness)."""
    sources: dict[str, SourceReading] = {}
    """``gpu:<source_id>`` or ``asic:<source_id>`` -> that source's reading in this second
    (meters are per meter id in ``meter_w``). Stage 2 holds each until the source's next one,
    up to the site's ``max_staleness``; empty in partials from before sample-and-hold, whose
    sums then count for their second only."""
    late_key: str | None = None
    """Set on the partial of one frame that reached stage 1 after its second had closed
    there: the frame's ``kind:source:seq`` (so a redelivery is counted once). Stage 2 does
    not combine such a partial; it restates the closed seconds it changes
    (``streams.decisions.restate``, ``site.power.restated.v1``)."""


class SitePower(Message, kw_only=True):
    """Site power by use for one second."""

    site_id: str
    ts_s: int
    ai_w: float
    mining_w: float
    overhead_w: float
    """POI meter - AI - mining when the POI meter reported, else the site's overhead model."""
    total_w: float
    poi_meter_w: float | None
    """Revenue meter's view; None when it did not report this second."""
    poi_energy_wh: float | None = None
    """Sum of the POI meters' energy registers read in this second, Wh (the count at the end
    of the second); None unless every POI meter's register was read in it (registers are not
    held). The marts take interval energy from its differences (``transforms.energy``)."""
    ai_energy_wh: float | None = None
    """The AI-role meters' registers, by the same rule as ``poi_energy_wh``, Wh."""
    mining_energy_wh: float | None = None
    """The mining-role meters' registers, by the same rule as ``poi_energy_wh``, Wh."""
    ai_counter_wh: float | None = None
    """GPU energy counters' steps that ended in this second (``GpuFrame.energy_step_mj``),
    Wh: the GPUs' own energy over each step, whatever their power did between polls. None
    when no step ended here, or when ``ai_w`` is the AI meter's (the meter is the
    measurement). The marts put it in place of ``ai_counter_sampled_wh``
    (``transforms.energy``, ``docs/cadence.md``)."""
    ai_counter_sampled_wh: float | None = None
    """What the AI samples held over those same steps, Wh (None with ``ai_counter_wh``)."""
    contract_w: float
    surplus_w: float
    """contract - AI - overhead; negative is a deficit."""
    hashrate_ths: float
    readings: int
    late_readings: int = 0
    held_sources: int = 0
    """Sources (GPU/ASIC sources and meters) whose reading is held from an earlier second:
    polled every 5 or 60 s, a source reports in one second of its period."""
    held_readings: int = 0
    """Device readings in those held sources (``readings`` counts the fresh ones only)."""
    stale_sources: int = 0
    """Known sources whose last reading is older than their kind's ``max_staleness``: a gap,
    left out of the sums (flag ``stale_sources``), never filled with zero or a guess."""
    mining_reading_s: float | None = None
    """Stamp of the oldest reading behind ``mining_w`` (a held reading is older than the
    second): the controller declares a curtailment achieved only once it is after the
    command. None: unknown (no mining reading, or a message from before this field)."""
    flags: list[str] = []
    """e.g. ``poi_meter_missing``, ``gap``, ``restated``."""
    emitted_s: float
    """Wall clock when this second was emitted (latency = emitted_s - reading time)."""


class SurplusEvent(Message, kw_only=True):
    """A surplus opening, changing materially, or closing."""

    event_id: str
    site_id: str
    kind: Literal["open", "update", "close"]
    ts_s: float
    start_s: float
    end_s: float | None
    surplus_w: float
    absorbed_w: float
    """Part of the surplus that mining used."""
    unabsorbed_w: float
    """Part sold back at the real-time price."""
    energy_wh: float
    absorbed_wh: float
    unabsorbed_wh: float


CurtailmentReason = Literal["economic", "grid", "4cp", "site_limit"]


class CurtailmentEvent(Message, kw_only=True):
    """One curtailment, from issue to end; overlapping triggers share one event."""

    event_id: str
    site_id: str
    kind: Literal["issued", "updated", "achieved", "released", "ended"]
    reasons: list[CurtailmentReason]
    reason_details: list[str]
    issued_at_s: float
    target_mining_w: float
    baseline_mining_w: float
    deadline_s: float
    achieved_at_s: float | None = None
    response_time_s: float | None = None
    deadline_met: bool | None = None
    curtailed_wh: float = 0.0
    ended_at_s: float | None = None
    ts_s: float
    # Decision audit: what the controller knew when it sent this message (its clock is
    # ``ts_s``). Every price here was published at or before ``ts_s``.
    price_kind: str | None = None
    """Kind of the decision price: ``sced`` (5-min LMP) or ``rt`` (15-min SPP, used where
    no SCED series exists); None: no price known yet."""
    price_usd_per_mwh: float | None = None
    """Latest published price of the site's settlement point."""
    price_interval_start_s: float | None = None
    price_published_s: float | None = None
    confirm_prices_usd_per_mwh: list[float] = []
    """The prices the economic trigger confirmed on (oldest first)."""
    confirm_published_s: list[float] = []
    """Publication time of each of ``confirm_prices_usd_per_mwh``."""
    hashprice_usd_per_ph_day: float | None = None
    """Gross hashprice in force."""
    hashprice_net_usd_per_ph_day: float | None = None
    """After the site's pool fee: what breakeven is computed from."""
    hashprice_published_s: float | None = None
    hashprice_source: str | None = None
    """Feed source, or ``policy`` when no feed value has arrived (the configured constant)."""
    breakeven_models: list[str] = []
    breakeven_usd_per_mwh: list[float] = []
    """Breakeven of each model of ``breakeven_models`` (same order, least efficient first),
    cost adder and restart cost included."""
    reserved_mw: float = 0.0
    """Load reserved for ancillary awards in force (economic and 4CP never shed it)."""
    reserved_awards: list[str] = []
    """``service/market/hour_start_s/MW`` of each award behind ``reserved_mw``."""
    trigger_states: list[str] = []
    """``<trigger>:<state>`` for every trigger at ``ts_s``: ``economic:on``,
    ``site_limit:off``, ``price_feed:stale`` ..."""
    site_load_w: float | None = None
    """AI + overhead + mining of the latest site second."""
    site_limit_w: float | None = None


class MinerCommand(Message, kw_only=True):
    """A setpoint for a set of miners, in priority order (least efficient first)."""

    command_id: str
    site_id: str
    event_id: str | None
    issued_at_s: float
    action: Literal["sleep", "wake", "set_power"]
    miner_ids: list[str]
    power_limit_w: float | None = None
    priority: int
    deadline_s: float


class Alert(Message, kw_only=True):
    """One alert per condition and subject, sent when it fires and when it resolves."""

    alert_id: str
    """Dedup key: ``<site>/<condition>/<subject>/<started_at>``."""
    site_id: str
    condition: Literal[
        "meter_silent",
        "device_meter_mismatch",
        "curtailment_late",
        "curtailment_failed",
        "site_over_limit",
        "miner_over_temperature",
        "miner_underhashing",
        "data_quality",
        "late_data",
        "feed_stale",
    ]
    subject: str
    severity: Literal["info", "warning", "critical"]
    state: Literal["firing", "resolved"]
    started_at_s: float
    ended_at_s: float | None = None
    message: str
    context: dict[str, str | float | int | None] = {}
