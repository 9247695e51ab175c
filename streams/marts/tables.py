"""The sink's DuckDB tables, declared as data: columns with types and units, natural keys,
the time column that partitions publication, and how a replayed or updated row is merged.

Every table's partition column is part of its primary key, so an upsert never moves a row
from one published partition to another (a test checks this).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

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


def _c(name: str, sql: str, doc: str) -> Column:
    return Column(name, sql, doc)


_SITE = _c("site_id", "VARCHAR", "site identifier")


def _rollup_columns(
    device: tuple[Column, ...], energy: tuple[Column, ...], extra: tuple[Column, ...] = ()
) -> tuple[Column, ...]:
    return (
        _SITE,
        *device,
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

TABLES: tuple[Table, ...] = (
    Table(
        "site_power",
        "site.power.v1",
        "Site power by use, one row per site and second.",
        (
            _SITE,
            _c("ts_s", "BIGINT", "start of the second, UTC epoch seconds"),
            _c("ai_w", "DOUBLE", "AI (GPU) power, W"),
            _c("mining_w", "DOUBLE", "mining (ASIC) power, W"),
            _c("overhead_w", "DOUBLE", "facility overhead (POI - AI - mining, or model), W"),
            _c("total_w", "DOUBLE", "ai + mining + overhead, W"),
            _c("poi_meter_w", "DOUBLE", "revenue (POI) meter power; null if it did not report, W"),
            _c("contract_w", "DOUBLE", "contracted (forward) power, W"),
            _c("surplus_w", "DOUBLE", "contract - AI - overhead (negative: deficit), W"),
            _c("hashrate_ths", "DOUBLE", "fleet hashrate, TH/s"),
            _c("readings", "BIGINT", "telemetry readings behind the second, count"),
            _c("late_readings", "BIGINT", "readings that arrived after the second closed, count"),
            _c("flags", "VARCHAR[]", "quality flags, e.g. poi_meter_missing, gap, restated"),
            _c("emitted_s", "DOUBLE", "wall clock when the second was emitted, UTC epoch seconds"),
        ),
        key=("site_id", "ts_s"),
        time_col="ts_s",
    ),
    Table(
        "surplus_events",
        "surplus.events.v1",
        "Surplus openings, updates and closes.",
        (
            _c("event_id", "VARCHAR", "surplus event identifier"),
            _SITE,
            _c("kind", "VARCHAR", "open, update or close"),
            _c("ts_s", "DOUBLE", "time of this message, UTC epoch seconds"),
            _c("start_s", "DOUBLE", "surplus start, UTC epoch seconds"),
            _c("end_s", "DOUBLE", "surplus end (null while open), UTC epoch seconds"),
            _c("surplus_w", "DOUBLE", "surplus power, W"),
            _c("absorbed_w", "DOUBLE", "part of the surplus mining used, W"),
            _c("unabsorbed_w", "DOUBLE", "part sold back at the real-time price, W"),
            _c("energy_wh", "DOUBLE", "surplus energy so far, Wh"),
            _c("absorbed_wh", "DOUBLE", "surplus energy absorbed by mining, Wh"),
            _c("unabsorbed_wh", "DOUBLE", "surplus energy not absorbed, Wh"),
        ),
        key=("event_id", "kind", "ts_s"),
        time_col="ts_s",
    ),
    Table(
        "curtailment_events",
        "curtailment.events.v1",
        "Curtailment events, from issue to end; overlapping triggers share one event.",
        (
            _c("event_id", "VARCHAR", "curtailment event identifier"),
            _SITE,
            _c("kind", "VARCHAR", "issued, updated, achieved, released or ended"),
            _c("reasons", "VARCHAR[]", "triggers: economic, grid, 4cp, site_limit"),
            _c("reason_details", "VARCHAR[]", "human-readable detail per trigger"),
            _c("issued_at_s", "DOUBLE", "when the curtailment was issued, UTC epoch seconds"),
            _c("target_mining_w", "DOUBLE", "mining power target, W"),
            _c("baseline_mining_w", "DOUBLE", "mining power before the event (baseline), W"),
            _c("deadline_s", "DOUBLE", "time by which the target must be reached, UTC epoch s"),
            _c("achieved_at_s", "DOUBLE", "when mining reached the target, UTC epoch seconds"),
            _c("response_time_s", "DOUBLE", "achieved_at_s - issued_at_s, s"),
            _c("deadline_met", "BOOLEAN", "target reached by the deadline"),
            _c("curtailed_wh", "DOUBLE", "energy curtailed against the baseline, Wh"),
            _c("ended_at_s", "DOUBLE", "when the event ended, UTC epoch seconds"),
            _c("ts_s", "DOUBLE", "time of this message, UTC epoch seconds"),
        ),
        key=("event_id", "kind", "ts_s"),
        time_col="ts_s",
    ),
    Table(
        "miner_commands",
        "miners.commands.v1",
        "Setpoints sent to the miner fleet controller.",
        (
            _c("command_id", "VARCHAR", "command identifier"),
            _SITE,
            _c("event_id", "VARCHAR", "curtailment event that caused it (null if none)"),
            _c("issued_at_s", "DOUBLE", "when the command was issued, UTC epoch seconds"),
            _c("action", "VARCHAR", "sleep, wake or set_power"),
            _c("miner_ids", "VARCHAR[]", "miners addressed, least efficient first"),
            _c("power_limit_w", "DOUBLE", "per-miner power limit for set_power, W"),
            _c("priority", "BIGINT", "priority order of the command"),
            _c("deadline_s", "DOUBLE", "time by which the command must be applied, UTC epoch s"),
        ),
        key=("command_id", "issued_at_s"),
        time_col="issued_at_s",
    ),
    Table(
        "alerts",
        "alerts.v1",
        "Alerts, one row per alert and state (firing, resolved).",
        (
            _c("alert_id", "VARCHAR", "dedup key <site>/<condition>/<subject>/<started_at>"),
            _SITE,
            _c("condition", "VARCHAR", "e.g. meter_silent, data_quality, site_over_limit"),
            _c("subject", "VARCHAR", "what the alert is about (meter, miner, mart ...)"),
            _c("severity", "VARCHAR", "info, warning or critical"),
            _c("state", "VARCHAR", "firing or resolved"),
            _c("started_at_s", "DOUBLE", "when the condition started, UTC epoch seconds"),
            _c("ended_at_s", "DOUBLE", "when it resolved (null while firing), UTC epoch seconds"),
            _c("message", "VARCHAR", "human-readable message"),
            _c("context_json", "VARCHAR", "evidence, as a JSON object"),
        ),
        key=("alert_id", "state", "started_at_s"),
        time_col="started_at_s",
    ),
    Table(
        "grid_prices",
        "grid.prices.v1",
        "Settlement point prices per interval.",
        (
            _c("market", "VARCHAR", "market, e.g. ERCOT"),
            _c("settlement_point", "VARCHAR", "settlement point, e.g. LZ_WEST"),
            _c("kind", "VARCHAR", "rt (15-minute), da (hourly) or sced (5-minute)"),
            _c("interval_start_s", "DOUBLE", "interval start, UTC epoch seconds"),
            _c("interval_end_s", "DOUBLE", "interval end, UTC epoch seconds"),
            _c("price_usd_per_mwh", "DECIMAL(18,6)", "price, USD/MWh (decimal)"),
            _c("published_s", "DOUBLE", "when the market published it, UTC epoch seconds"),
        ),
        key=("market", "settlement_point", "kind", "interval_start_s"),
        time_col="interval_start_s",
    ),
    Table(
        "grid_carbon",
        "grid.carbon.v1",
        "Grid carbon intensity per hour.",
        (
            _c("region", "VARCHAR", "grid region, e.g. ERCOT"),
            _c("kind", "VARCHAR", "average (location-based) or marginal"),
            _c("hour_start_s", "DOUBLE", "hour start, UTC epoch seconds"),
            _c("intensity_g_per_kwh", "DOUBLE", "carbon intensity, gCO2eq/kWh"),
            _c("source", "VARCHAR", "publisher of the figure"),
        ),
        key=("region", "kind", "hour_start_s"),
        time_col="hour_start_s",
    ),
    Table(
        "grid_dispatch",
        "grid.dispatch.v1",
        "Demand-response, ancillary and emergency dispatches (latest version per id and start).",
        (
            _c("event_id", "VARCHAR", "dispatch identifier"),
            _c("site_id", "VARCHAR", "site dispatched (null: system-wide)"),
            _c("kind", "VARCHAR", "demand_response, ecrs, rrs, non_spin, ers, eea, ..."),
            _c("level", "BIGINT", "EEA level 1-3 (null otherwise)"),
            _c("reduce_to_mw", "DOUBLE", "mining load to be at or under (null: all), MW"),
            _c("start_s", "DOUBLE", "dispatch start, UTC epoch seconds"),
            _c("end_s", "DOUBLE", "dispatch end (null while open-ended), UTC epoch seconds"),
            _c("response_deadline_s", "DOUBLE", "seconds after start_s to reach the reduction, s"),
        ),
        key=("event_id", "start_s"),
        time_col="start_s",
    ),
    Table(
        "telemetry_meter_1m",
        "telemetry.meter.v1",
        "Meter readings rolled up per meter and minute (audit trail of raw telemetry).",
        _rollup_columns(
            (_c("meter_id", "VARCHAR", "meter identifier"),),
            _counter("wh", "DOUBLE", "import energy register"),
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
            (
                _c("node_id", "VARCHAR", "GPU node identifier"),
                _c("gpu_index", "BIGINT", "GPU index within the node"),
            ),
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
            (_c("miner_id", "VARCHAR", "miner identifier"),),
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
        (
            _SITE,
            _c(
                "updated_s",
                "DOUBLE",
                "SiteConfig.updated_s: when the config was changed, UTC epoch seconds",
            ),
            _c("kafka_partition", "BIGINT", "partition of site.config.v1 it was read from"),
            _c("kafka_offset", "BIGINT", "offset of the message in that partition"),
            _c("kafka_timestamp_s", "DOUBLE", "Kafka message timestamp, UTC epoch seconds"),
            _c("market", "VARCHAR", "market, e.g. ERCOT"),
            _c(
                "settlement_point",
                "VARCHAR",
                "settlement point whose RT price settles the site, e.g. LZ_WEST",
            ),
            _c(
                "hashprice_usd_per_ph_day",
                "DECIMAL(18,6)",
                "policy.hashprice_usd_per_ph_day: the hashprice the curtailment controller "
                "uses, which the settlement mart also uses to value mining work, USD/PH/day "
                "(decimal from the float's shortest text)",
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
