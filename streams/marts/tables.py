"""The sink's DuckDB tables, declared as data: columns with types and units, natural keys,
the time column that partitions publication, and how a replayed or updated row is merged.

A table whose rows are messages takes its columns from the topic's msgspec contract (names,
order and types; ``column_type`` maps a contract type to DuckDB). Only the docs are written
here, plus the columns that are the mart's own (rollups, Kafka positions, JSON text), each
saying why. Every contract field is either a column or listed in ``not_columns`` with the
reason: a field added to a contract and not declared here fails the mart tests, naming it
(``tests/marts/test_tables_contracts.py``), so the marts never silently miss it. (It does not
stop the sink: a store's columns change only when someone decides they should.)

Every table's partition column is part of its primary key, so an upsert never moves a row
from one published partition to another (a test checks this).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import polars as pl

from schemas.events import Alert, CurtailmentEvent, MinerCommand, SitePower, SurplusEvent
from schemas.grid import CarbonIntensity, DispatchSignal, HashpriceSignal, PriceSignal
from schemas.site import SiteConfig
from schemas.telemetry import AsicFrame, GpuFrame, MeterFrame
from streams.errors import TerminalError

Merge = Literal["replace", "rollup"]
"""``replace``: the latest row for a key wins (restated seconds, updated events).
``rollup``: counts and sums add up, min/max/first/last combine (1-minute telemetry)."""

_POLARS: dict[str, pl.DataType] = {
    "VARCHAR": pl.String(),
    "BIGINT": pl.Int64(),
    "UBIGINT": pl.UInt64(),
    "DOUBLE": pl.Float64(),
    "BOOLEAN": pl.Boolean(),
    "VARCHAR[]": pl.List(pl.String()),
    "DOUBLE[]": pl.List(pl.Float64()),
    "DECIMAL(38,6)": pl.Decimal(38, 6),
    "DECIMAL(18,6)": pl.Decimal(18, 6),
}


@dataclass(frozen=True)
class Column:
    name: str
    sql: str
    doc: str
    """What it is, with its unit."""

    @property
    def dtype(self) -> pl.DataType:
        return _POLARS[self.sql]


@dataclass(frozen=True)
class Table:
    name: str
    topic: str
    """Base topic the rows come from ("" for tables the publication writes)."""
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_col: str
    """UTC epoch seconds; publication partitions by its date and hour."""
    merge: Merge = "replace"
    derived: tuple[Column, ...] = ()
    """Columns computed at publication (e.g. means from sums); documented like the rest."""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    def ddl(self) -> str:
        cols = ", ".join(f"{c.name} {c.sql}" for c in self.columns)
        key = ", ".join(self.key)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols}, PRIMARY KEY ({key}))"


class ContractDrift(TerminalError, TypeError):
    """A contract and the mart declared from it disagree (a field neither a column nor
    listed as left out, a doc for a field the contract lacks, a type with no column type)."""


_SCALARS: dict[type[msgspec.inspect.Type], str] = {
    msgspec.inspect.StrType: "VARCHAR",
    msgspec.inspect.IntType: "BIGINT",
    msgspec.inspect.FloatType: "DOUBLE",
    msgspec.inspect.BoolType: "BOOLEAN",
}


def column_type(t: msgspec.inspect.Type) -> str:
    """DuckDB type of a contract field's type. Every column is nullable, so ``X | None`` is
    X; a Literal is its values' type; a list is an array of its items' type. Dicts and
    nested Structs have no column type: a table stores them in a form of its own (JSON)."""
    if isinstance(t, msgspec.inspect.Metadata):  # Annotated bounds: the type underneath
        return column_type(t.type)
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [u for u in t.types if not isinstance(u, msgspec.inspect.NoneType)]
        if len(inner) == 1:
            return column_type(inner[0])
    if isinstance(t, msgspec.inspect.LiteralType):
        kinds = {type(v) for v in t.values}
        if kinds == {str}:
            return "VARCHAR"
        if kinds == {int}:
            return "BIGINT"
    if isinstance(t, msgspec.inspect.ListType):
        return f"{column_type(t.item_type)}[]"
    if type(t) in _SCALARS:
        return _SCALARS[type(t)]
    raise ContractDrift(f"no column type for {t!r}")


@dataclass(frozen=True)
class FromContract:
    """How a table's columns come from its topic's contract: a column per field documented
    in ``docs``, in the contract's order, of the field's type unless ``types`` says why not.
    ``v`` (the envelope's contract version, one value per topic) is never a column."""

    contract: type[msgspec.Struct]
    docs: Mapping[str, str]
    """Field -> doc of its column, with its unit."""
    not_columns: Mapping[str, str] = field(default_factory=dict)
    """Field -> why it is no column of its own (left out, or stored in another form)."""
    types: Mapping[str, str] = field(default_factory=dict)
    """Field -> DuckDB type where the mart stores it differently (each says why)."""
    per_reading: bool = False
    """Columnar frame: a column holds one reading (the item type of the field's list)."""

    def undeclared(self) -> list[str]:
        """Contract fields neither stored nor left out: a contract grew and the mart was not
        told. The sink still runs without them; ``tests/marts`` fails, naming them."""
        fields = _field_types(self.contract)
        return [f for f in fields if f != "v" and f not in self.docs and f not in self.not_columns]

    def columns(self) -> tuple[Column, ...]:
        """The stored columns; a documented field the contract lacks is an error (its column
        would have no type). ``not_columns`` may name fields a contract does not have yet."""
        name = self.contract.__name__
        fields = _field_types(self.contract)
        missing = sorted({*self.docs, *self.types} - set(fields))
        both = sorted(set(self.docs) & set(self.not_columns))
        if missing or both:
            raise ContractDrift(
                f"{name}: columns of fields it lacks {missing}; both stored and left out {both}"
            )
        out = []
        for f, t in fields.items():
            if f in self.docs:
                each = self.per_reading and isinstance(t, msgspec.inspect.ListType)
                one = t.item_type if each and isinstance(t, msgspec.inspect.ListType) else t
                sql = self.types.get(f) or column_type(one)
                out.append(Column(f, sql, self.docs[f]))
        return tuple(out)


def _field_types(contract: type[msgspec.Struct]) -> dict[str, msgspec.inspect.Type]:
    info = msgspec.inspect.type_info(contract)
    if not isinstance(info, msgspec.inspect.StructType):
        raise ContractDrift(f"{contract!r} is not a msgspec Struct")
    return {f.name: f.type for f in info.fields}


def _field_type(contract: type[msgspec.Struct], name: str) -> msgspec.inspect.Type:
    types = _field_types(contract)
    if name not in types:
        raise ContractDrift(f"{contract.__name__} has no field {name!r}")
    return types[name]


def contract_column(contract: type[msgspec.Struct], name: str, doc: str) -> Column:
    """One column of the contract field ``name``'s type (for tables that pick fields)."""
    return Column(name, column_type(_field_type(contract, name)), doc)


def _c(name: str, sql: str, doc: str) -> Column:
    return Column(name, sql, doc)


_SITE_DOC = "site identifier"
_SITE = _c("site_id", "VARCHAR", _SITE_DOC)


def _rollup_columns(
    keys: tuple[Column, ...], energy: tuple[Column, ...], extra: tuple[Column, ...] = ()
) -> tuple[Column, ...]:
    """The mart's own columns of a per-device, per-minute rollup around the device key."""
    return (
        *keys,
        _c("minute_s", "BIGINT", "minute start, UTC epoch seconds (reading ts_s floored to 60)"),
        _c("readings", "BIGINT", "readings of the device in the minute, count"),
        _c("power_readings", "BIGINT", "readings that carried a power value, count"),
        _c(
            "power_sum_w",
            "DECIMAL(38,6)",
            "sum of the power readings, W (exact decimal, 1 uW per reading)",
        ),
        _c("power_min_w", "DOUBLE", "lowest power reading, W"),
        _c("power_max_w", "DOUBLE", "highest power reading, W"),
        *extra,
        _c("first_ts_s", "DOUBLE", "earliest reading time in the minute, UTC epoch seconds"),
        _c("last_ts_s", "DOUBLE", "latest reading time in the minute, UTC epoch seconds"),
        *energy,
    )


def _counter(unit: str, sql: str, what: str) -> tuple[Column, ...]:
    return (
        _c(f"energy_first_{unit}", sql, f"{what} at the earliest reading that had one, {unit}"),
        _c("energy_first_ts_s", "DOUBLE", "time of energy_first, UTC epoch seconds"),
        _c(f"energy_last_{unit}", sql, f"{what} at the latest reading that had one, {unit}"),
        _c("energy_last_ts_s", "DOUBLE", "time of energy_last, UTC epoch seconds"),
    )


_MEAN = _c("power_mean_w", "DOUBLE", "power_sum_w / power_readings (null if none), W")

# Frame fields every rollup consumes rather than stores.
_FRAME_ROLLED = {
    "source_id": "sending collector: its replay watermark is kept in sink_sources, not rows",
    "seq": "replay watermark only (sink_sources)",
    "ts_s": "rolled up into minute_s, first_ts_s and last_ts_s",
    "power_w": "rolled up into power_readings, power_sum_w, power_min_w and power_max_w",
}
_NOT_AUDITED = "not kept: the 1-minute audit trail is of power, energy and hashrate"

CONTRACTS: dict[str, FromContract] = {
    "site_power": FromContract(
        SitePower,
        {
            "site_id": _SITE_DOC,
            "ts_s": "start of the second, UTC epoch seconds",
            "ai_w": "AI (GPU) power, W",
            "mining_w": "mining (ASIC) power, W",
            "overhead_w": "facility overhead (POI - AI - mining, or model), W",
            "total_w": "ai + mining + overhead, W",
            "poi_meter_w": "revenue (POI) meter power; null if it did not report, W",
            "poi_energy_wh": "POI meters' energy register read in this second, the count at "
            "its end (null: not read then; registers are not held), Wh",
            "ai_energy_wh": "AI meters' energy register read in this second, as poi_energy_wh, Wh",
            "mining_energy_wh": "mining meters' energy register read in this second, as "
            "poi_energy_wh, Wh",
            "ai_counter_wh": "GPU energy counters' steps that ended in this second (null: "
            "none, or ai_w is the AI meter's), Wh",
            "ai_counter_sampled_wh": "what the AI samples held over those steps (the part "
            "ai_counter_wh replaces in interval_energy), Wh",
            "contract_w": "contracted (forward) power, W",
            "surplus_w": "contract - AI - overhead (negative: deficit), W",
            "hashrate_ths": "fleet hashrate, TH/s",
            "readings": "telemetry readings behind the second, count",
            "late_readings": "readings that arrived after the second closed, count",
            "flags": "quality flags, e.g. poi_meter_missing, gap, restated",
            "emitted_s": "wall clock when the second was emitted, UTC epoch seconds",
            "held_sources": "sources whose last reading was held into this second (polled "
            "less often than every second; within their staleness), count",
            "held_readings": "readings behind the held sources' values, count",
            "stale_sources": "sources past their staleness, left out of the sums (never "
            "read as zero; also the flag stale_sources), count",
            "mining_reading_s": "when the newest mining reading behind mining_w was taken (the "
            "controller's compliance check; null from older producers), UTC epoch seconds",
        },
    ),
    "surplus_events": FromContract(
        SurplusEvent,
        {
            "event_id": "surplus event identifier",
            "site_id": _SITE_DOC,
            "kind": "open, update or close",
            "ts_s": "time of this message, UTC epoch seconds",
            "start_s": "surplus start, UTC epoch seconds",
            "end_s": "surplus end (null while open), UTC epoch seconds",
            "surplus_w": "surplus power, W",
            "absorbed_w": "part of the surplus mining used, W",
            "unabsorbed_w": "part sold back at the real-time price, W",
            "energy_wh": "surplus energy so far, Wh",
            "absorbed_wh": "surplus energy absorbed by mining, Wh",
            "unabsorbed_wh": "surplus energy not absorbed, Wh",
        },
    ),
    "curtailment_events": FromContract(
        CurtailmentEvent,
        {
            "event_id": "curtailment event identifier",
            "site_id": _SITE_DOC,
            "kind": "issued, updated, achieved, released or ended",
            "reasons": "triggers: economic, grid, 4cp, site_limit",
            "reason_details": "human-readable detail per trigger",
            "issued_at_s": "when the curtailment was issued, UTC epoch seconds",
            "target_mining_w": "mining power target, W",
            "baseline_mining_w": "mining power before the event (baseline), W",
            "deadline_s": "time by which the target must be reached, UTC epoch s",
            "achieved_at_s": "when mining reached the target, UTC epoch seconds",
            "response_time_s": "achieved_at_s - issued_at_s, s",
            "deadline_met": "target reached by the deadline",
            "curtailed_wh": "energy curtailed against the baseline, Wh",
            "ended_at_s": "when the event ended, UTC epoch seconds",
            "ts_s": "time of this message, UTC epoch seconds",
            # The controller's decision audit: what it knew at ts_s (every price published at
            # or before it), so "why were we curtailed at T" is one query over the mart. Its
            # prices are the floats the decision compared, not settled money: DOUBLE.
            "price_kind": "kind of the decision price: sced (5-min LMP) or rt (15-min SPP);"
            " null: no price known yet",
            "price_usd_per_mwh": "latest published price of the site's settlement point, USD/MWh",
            "price_interval_start_s": "interval that price is for, UTC epoch seconds",
            "price_published_s": "when that price was published, UTC epoch seconds",
            "confirm_prices_usd_per_mwh": "prices the economic trigger confirmed on, oldest "
            "first, USD/MWh",
            "confirm_published_s": "publication time of each confirming price, UTC epoch s",
            "hashprice_usd_per_ph_day": "gross hashprice in force, USD/PH/day",
            "hashprice_net_usd_per_ph_day": "hashprice after the pool fee (what breakeven is "
            "computed from), USD/PH/day",
            "hashprice_published_s": "when that hashprice was published, UTC epoch seconds",
            "hashprice_source": "hashprice feed source, or policy (the configured constant)",
            "breakeven_models": "ASIC models, least efficient first",
            "breakeven_usd_per_mwh": "breakeven of each of breakeven_models (same order; cost"
            " adder and restart cost included), USD/MWh",
            "reserved_mw": "load reserved for ancillary awards in force (never shed by "
            "economic or 4CP), MW",
            "reserved_awards": "service/market/hour_start_s/MW of each award behind reserved_mw",
            "trigger_states": "<trigger>:<state> of every trigger at ts_s, e.g. economic:on, "
            "price_feed:stale",
            "site_load_w": "AI + overhead + mining of the latest site second, W",
            "site_limit_w": "site limit the site_limit trigger used, W",
        },
    ),
    "miner_commands": FromContract(
        MinerCommand,
        {
            "command_id": "command identifier",
            "site_id": _SITE_DOC,
            "event_id": "curtailment event that caused it (null if none)",
            "issued_at_s": "when the command was issued, UTC epoch seconds",
            "action": "sleep, wake or set_power",
            "miner_ids": "miners addressed, least efficient first",
            "power_limit_w": "per-miner power limit for set_power, W",
            "priority": "priority order of the command",
            "deadline_s": "time by which the command must be applied, UTC epoch s",
        },
    ),
    "alerts": FromContract(
        Alert,
        {
            "alert_id": "dedup key <site>/<condition>/<subject>/<started_at>",
            "site_id": _SITE_DOC,
            "condition": "e.g. meter_silent, data_quality, site_over_limit",
            "subject": "what the alert is about (meter, miner, mart ...)",
            "severity": "info, warning or critical",
            "state": "firing or resolved",
            "started_at_s": "when the condition started, UTC epoch seconds",
            "ended_at_s": "when it resolved (null while firing), UTC epoch seconds",
            "message": "human-readable message",
        },
        not_columns={"context": "a dict has no column type: stored as the JSON text context_json"},
    ),
    "grid_prices": FromContract(
        PriceSignal,
        {
            "market": "market, e.g. ERCOT",
            "settlement_point": "settlement point, e.g. LZ_WEST",
            "kind": "rt (15-minute), da (hourly) or sced (5-minute)",
            "interval_start_s": "interval start, UTC epoch seconds",
            "interval_end_s": "interval end, UTC epoch seconds",
            "price_usd_per_mwh": "price, USD/MWh (decimal)",
            "published_s": "when the market published it, UTC epoch seconds",
        },
        # Money is exact in the marts: the float of the wire is stored at 6 decimal places.
        types={"price_usd_per_mwh": "DECIMAL(18,6)"},
    ),
    "grid_hashprice": FromContract(
        HashpriceSignal,
        {
            "source": "publisher and basis of the figure, e.g. coinmetrics:2020-03-12",
            "ts_s": "start of the period it covers (a day's start), UTC epoch seconds",
            "published_s": "when it was known (a daily value: its day's end), UTC epoch s",
            "usd_per_ph_day": "gross hashprice before pool fees, USD/PH/day (decimal)",
            "difficulty": "network difficulty behind it (null: not given)",
            "subsidy_btc_per_block": "block subsidy, BTC per block (null: not given)",
            "fees_btc_per_block": "mean fees, BTC per block (null: not given)",
            "btc_price_usd": "bitcoin price, USD (null: not given)",
        },
        # Money: settlement multiplies it with PH-days, exactly.
        types={"usd_per_ph_day": "DECIMAL(18,6)"},
    ),
    "grid_carbon": FromContract(
        CarbonIntensity,
        {
            "region": "grid region, e.g. ERCOT",
            "kind": "average (location-based) or marginal",
            "hour_start_s": "hour start, UTC epoch seconds",
            "intensity_g_per_kwh": "carbon intensity, gCO2eq/kWh",
            "source": "publisher of the figure",
        },
    ),
    "grid_dispatch": FromContract(
        DispatchSignal,
        {
            "event_id": "dispatch identifier",
            "site_id": "site dispatched (null: system-wide)",
            "kind": "demand_response, ecrs, rrs, non_spin, ers, eea, ...",
            "level": "EEA level 1-3 (null otherwise)",
            "reduce_to_mw": "mining load to be at or under (null: all), MW",
            "start_s": "dispatch start, UTC epoch seconds",
            "end_s": "dispatch end (null while open-ended), UTC epoch seconds",
            "response_deadline_s": "seconds after start_s to reach the reduction, s",
        },
    ),
    # Rollups: the device key comes from the frame (one value per reading); the rest of the
    # frame is rolled up into the mart's own columns or, as listed, not kept.
    "telemetry_meter_1m": FromContract(
        MeterFrame,
        {"site_id": _SITE_DOC, "meter_id": "meter identifier"},
        not_columns={
            **_FRAME_ROLLED,
            "energy_wh": "rolled up into energy_first_wh and energy_last_wh",
        },
        per_reading=True,
    ),
    "telemetry_gpu_1m": FromContract(
        GpuFrame,
        {
            "site_id": _SITE_DOC,
            "node_id": "GPU node identifier",
            "gpu_index": "GPU index within the node",
        },
        not_columns={
            **_FRAME_ROLLED,
            "energy_mj": "rolled up into energy_first_mj and energy_last_mj",
            **dict.fromkeys(
                ("energy_step_mj", "step_s", "step_power_w"),
                "counter steps between polls: summed per second into site_power."
                "ai_counter_wh and ai_counter_sampled_wh; the counter itself is kept as "
                "energy_first_mj and energy_last_mj",
            ),
            **dict.fromkeys(
                (
                    "util_pct",
                    "temp_c",
                    "power_limit_w",
                    "sm_clock_mhz",
                    "throttle_reasons",
                    "power_instant_w",
                ),
                _NOT_AUDITED,
            ),
        },
        per_reading=True,
    ),
    "telemetry_asic_1m": FromContract(
        AsicFrame,
        {"site_id": _SITE_DOC, "miner_id": "miner identifier"},
        not_columns={
            **_FRAME_ROLLED,
            "hashrate_ths": "rolled up into hashrate_sum_ths",
            "state": "rolled up into hashing_readings",
            **dict.fromkeys(("model", "temp_c", "fan_rpm", "power_limit_w", "error"), _NOT_AUDITED),
        },
        per_reading=True,
    ),
}
"""Table -> how its columns come from its topic's contract."""


def _from(table: str) -> tuple[Column, ...]:
    return CONTRACTS[table].columns()


def _reading_type(frame: type[msgspec.Struct], name: str) -> str:
    """DuckDB type of one reading of a frame's list field."""
    t = _field_type(frame, name)
    if not isinstance(t, msgspec.inspect.ListType):
        raise ContractDrift(f"{frame.__name__}.{name} is not a per-reading list")
    return column_type(t.item_type)


TABLES: tuple[Table, ...] = (
    Table(
        "site_power",
        "site.power.v1",
        "Site power by use, one row per site and second.",
        _from("site_power"),
        key=("site_id", "ts_s"),
        time_col="ts_s",
    ),
    Table(
        "surplus_events",
        "surplus.events.v1",
        "Surplus openings, updates and closes.",
        _from("surplus_events"),
        key=("event_id", "kind", "ts_s"),
        time_col="ts_s",
    ),
    Table(
        "curtailment_events",
        "curtailment.events.v1",
        "Curtailment events, from issue to end; overlapping triggers share one event.",
        _from("curtailment_events"),
        key=("event_id", "kind", "ts_s"),
        time_col="ts_s",
    ),
    Table(
        "miner_commands",
        "miners.commands.v1",
        "Setpoints sent to the miner fleet controller.",
        _from("miner_commands"),
        key=("command_id", "issued_at_s"),
        time_col="issued_at_s",
    ),
    Table(
        "alerts",
        "alerts.v1",
        "Alerts, one row per alert and state (firing, resolved).",
        (
            *_from("alerts"),
            # Alert.context is a dict of evidence: the mart keeps it as JSON text.
            _c("context_json", "VARCHAR", "evidence, as a JSON object"),
        ),
        key=("alert_id", "state", "started_at_s"),
        time_col="started_at_s",
    ),
    Table(
        "grid_prices",
        "grid.prices.v1",
        "Settlement point prices per interval.",
        _from("grid_prices"),
        key=("market", "settlement_point", "kind", "interval_start_s"),
        time_col="interval_start_s",
    ),
    Table(
        "grid_hashprice",
        "grid.hashprice.v1",
        "Bitcoin network hashprice per period (settlement values mining at the one in force).",
        _from("grid_hashprice"),
        key=("source", "ts_s"),
        time_col="ts_s",
    ),
    Table(
        "grid_carbon",
        "grid.carbon.v1",
        "Grid carbon intensity per hour.",
        _from("grid_carbon"),
        key=("region", "kind", "hour_start_s"),
        time_col="hour_start_s",
    ),
    Table(
        "grid_dispatch",
        "grid.dispatch.v1",
        "Demand-response, ancillary and emergency dispatches (latest version per id and start).",
        _from("grid_dispatch"),
        key=("event_id", "start_s"),
        time_col="start_s",
    ),
    Table(
        "telemetry_meter_1m",
        "telemetry.meter.v1",
        "Meter readings rolled up per meter and minute (audit trail of raw telemetry).",
        _rollup_columns(
            _from("telemetry_meter_1m"),
            _counter("wh", _reading_type(MeterFrame, "energy_wh"), "import energy register"),
        ),
        key=("site_id", "meter_id", "minute_s"),
        time_col="minute_s",
        merge="rollup",
        derived=(_MEAN,),
    ),
    Table(
        "telemetry_gpu_1m",
        "telemetry.gpu.v1",
        "GPU readings rolled up per GPU and minute (audit trail of raw telemetry).",
        _rollup_columns(
            _from("telemetry_gpu_1m"),
            # NVML's energy counter is an unsigned 64-bit integer; the contract's int cannot
            # say unsigned, and BIGINT would overflow past 2**63 mJ.
            _counter("mj", "UBIGINT", "NVML total energy counter"),
        ),
        key=("site_id", "node_id", "gpu_index", "minute_s"),
        time_col="minute_s",
        merge="rollup",
        derived=(_MEAN,),
    ),
    Table(
        "telemetry_asic_1m",
        "telemetry.asic.v1",
        "ASIC miner scrapes rolled up per miner and minute (audit trail of raw telemetry).",
        _rollup_columns(
            _from("telemetry_asic_1m"),
            (),
            (
                _c("hashrate_sum_ths", "DECIMAL(38,6)", "sum of the hashrate readings, TH/s"),
                _c("hashing_readings", "BIGINT", "readings in state hashing, count"),
            ),
        ),
        key=("site_id", "miner_id", "minute_s"),
        time_col="minute_s",
        merge="rollup",
        derived=(_MEAN, _c("hashrate_mean_ths", "DOUBLE", "hashrate_sum_ths / readings, TH/s")),
    ),
    Table(
        "site_configs",
        "site.config.v1",
        "Every site configuration version the sink consumed (history kept for audit; the "
        "topic itself is compacted to the latest per site). The settlement mart settles an "
        "interval with the version in force at its start: the latest updated_s at or before "
        "it (ties: highest offset), or the earliest version for intervals before any.",
        # The mart's own shape: a few SiteConfig fields as columns, the Kafka position of
        # each version, and the whole config as JSON (so a new SiteConfig field is kept too).
        (
            contract_column(SiteConfig, "site_id", _SITE_DOC),
            contract_column(
                SiteConfig,
                "updated_s",
                "SiteConfig.updated_s: when the config was changed, UTC epoch seconds",
            ),
            _c("kafka_partition", "BIGINT", "partition of site.config.v1 it was read from"),
            _c("kafka_offset", "BIGINT", "offset of the message in that partition"),
            _c("kafka_timestamp_s", "DOUBLE", "Kafka message timestamp, UTC epoch seconds"),
            contract_column(SiteConfig, "market", "market, e.g. ERCOT"),
            contract_column(
                SiteConfig,
                "settlement_point",
                "settlement point whose RT price settles the site, e.g. LZ_WEST",
            ),
            # A nested policy field, and money: exact decimal rather than the wire's float.
            _c(
                "hashprice_usd_per_ph_day",
                "DECIMAL(18,6)",
                "policy.hashprice_usd_per_ph_day: the hashprice the curtailment controller "
                "and the settlement mart use before any network value (grid_hashprice), "
                "USD/PH/day (decimal from the float's shortest text)",
            ),
            _c(
                "contract_json",
                "VARCHAR",
                "contract blocks as a JSON array of {start_s, end_s,"
                " mw, price_usd_per_mwh} (s, MW, USD/MWh)",
            ),
            _c("config_json", "VARCHAR", "the whole SiteConfig message as JSON"),
        ),
        key=("site_id", "updated_s", "kafka_partition", "kafka_offset"),
        time_col="updated_s",
    ),
)

REVISIONS = Table(
    "mart_revisions",
    "",
    "Audit trail of restatements: one row per derived-mart row (mart, site, interval or hour)"
    " whose published values changed from one publication generation to a later one, e.g. "
    "late telemetry changed an interval's energy or the market restated a price. Rows "
    "published for the first time (an interval whose price arrived late) are not revisions."
    " Written by the publication itself (no source topic); a republication that changes "
    "nothing adds no row.",
    (
        _c("mart", "VARCHAR", "derived mart revised: interval_energy, settlement or carbon_hourly"),
        _SITE,
        _c(
            "key_col",
            "VARCHAR",
            "name of the time key in that mart: interval_start_s or hour_start_s",
        ),
        _c(
            "key_start_s",
            "BIGINT",
            "value of that key: interval (or hour) start, UTC epoch seconds",
        ),
        _c("generation_before", "BIGINT", "publication generation of the replaced version"),
        _c("generation_after", "BIGINT", "publication generation of the new version"),
        _c(
            "changed_columns",
            "VARCHAR[]",
            "columns whose value changed, in the mart's order "
            "(all non-key columns when the row was withdrawn)",
        ),
        _c("old_values", "VARCHAR[]", "their values before, as text (units as in the mart)"),
        _c("new_values", "VARCHAR[]", "their values after, as text (null: row withdrawn)"),
        _c("revised_at_s", "DOUBLE", "when the new version was published, UTC epoch seconds"),
    ),
    key=("mart", "site_id", "key_start_s", "generation_after"),
    time_col="key_start_s",
)
"""Not consumed from a topic: the publication writes it (``streams.marts.revisions``)."""

BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
BY_TOPIC: dict[str, Table] = {t.topic: t for t in TABLES}
SINK_TOPICS: tuple[str, ...] = tuple(t.topic for t in TABLES)

_DERIVED_SQL: dict[str, str] = {
    "power_mean_w": "CAST(power_sum_w AS DOUBLE) / NULLIF(power_readings, 0)",
    "hashrate_mean_ths": "CAST(hashrate_sum_ths AS DOUBLE) / NULLIF(readings, 0)",
}


def publish_select(table: Table) -> str:
    """Column list of the published form of ``table`` (stored columns, then derived)."""
    parts = table.names + [f"{_DERIVED_SQL[c.name]} AS {c.name}" for c in table.derived]
    return ", ".join(parts)


# Internal bookkeeping, written in the same transaction as the rows.
BOOKKEEPING_DDL: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS sink_offsets (topic VARCHAR, partition INTEGER, "
    "next_offset BIGINT NOT NULL, updated_at_s DOUBLE, PRIMARY KEY (topic, partition))",
    "CREATE TABLE IF NOT EXISTS sink_sources (topic VARCHAR, source_id VARCHAR, "
    "last_ts_s DOUBLE NOT NULL, last_seq BIGINT NOT NULL, frames BIGINT NOT NULL, "
    "stale_frames BIGINT NOT NULL, PRIMARY KEY (topic, source_id))",
    "CREATE TABLE IF NOT EXISTS sink_dirty (table_name VARCHAR, hour_s BIGINT, "
    "PRIMARY KEY (table_name, hour_s))",
)
