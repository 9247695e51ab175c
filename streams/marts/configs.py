"""Site configuration versions: messages of ``site.config.v1`` -> ``site_configs`` rows, and
back to the version in force for each settlement interval (pure: no Kafka, no DuckDB).

The topic is compacted (the latest config per site), but the sink keeps every version it
consumed, keyed by site, ``updated_s`` and Kafka position, so a settled interval can always
be traced to the exact config that priced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import msgspec
import polars as pl

from schemas.site import ContractBlock, SiteConfig
from streams.marts.tables import BY_NAME

SITE_CONFIG_TOPIC = "site.config.v1"
_TABLE = BY_NAME["site_configs"]
_ENC = msgspec.json.Encoder()
_MICRO = Decimal("0.000001")


@dataclass(frozen=True)
class ConfigMessage:
    """A decoded site config and where it was read from."""

    config: SiteConfig
    partition: int
    offset: int
    timestamp_s: float


def decimal_of(value: float) -> Decimal:
    """A float to Decimal through its shortest text (34.5 -> 34.5, never 34.4999...), as the
    month-close reports do, then to 6 places (the stored scale)."""
    return Decimal(repr(float(value))).quantize(_MICRO)


def site_config_frame(msgs: Sequence[ConfigMessage]) -> pl.DataFrame:
    """``site_configs`` rows, one per message (same key twice in a batch: the last wins)."""
    rows = [
        {
            "site_id": m.config.site_id,
            "updated_s": float(m.config.updated_s),
            "kafka_partition": m.partition,
            "kafka_offset": m.offset,
            "kafka_timestamp_s": m.timestamp_s,
            "market": m.config.market,
            "settlement_point": m.config.settlement_point,
            "hashprice_usd_per_ph_day": decimal_of(m.config.policy.hashprice_usd_per_ph_day),
            "contract_json": _ENC.encode(m.config.contract).decode(),
            "config_json": _ENC.encode(m.config).decode(),
        }
        for m in msgs
    ]
    frame = pl.DataFrame(rows, schema=_TABLE.schema(), orient="row")
    return frame.unique(subset=list(_TABLE.key), keep="last", maintain_order=True)


def latest_versions(configs: pl.DataFrame) -> pl.DataFrame:
    """One row per (site, updated_s): the highest Kafka position wins, sorted by time."""
    return configs.sort("site_id", "updated_s", "kafka_partition", "kafka_offset").unique(
        ["site_id", "updated_s"], keep="last", maintain_order=True
    )


def assign_versions(energy: pl.DataFrame, configs: pl.DataFrame) -> pl.DataFrame:
    """``energy`` rows of sites that have a config, with the ``updated_s`` of the version in
    force at ``interval_start_s``: the latest at or before it, or the site's earliest
    version for intervals before every version. Sites without a config are left out."""
    versions = latest_versions(configs).select("site_id", "updated_s")
    earliest = versions.group_by("site_id").agg(pl.col("updated_s").min().alias("_first"))
    left = energy.with_columns(pl.col("interval_start_s").cast(pl.Float64).alias("_t"))
    # Both sides are sorted on the time key; polars cannot verify that within ``by`` groups.
    joined = left.sort("_t").join_asof(
        versions.sort("updated_s"),
        left_on="_t",
        right_on="updated_s",
        by="site_id",
        strategy="backward",
        check_sortedness=False,
    )
    return (
        joined.join(earliest, on="site_id", how="inner")
        .with_columns(pl.coalesce("updated_s", "_first").alias("updated_s"))
        .drop("_t", "_first")
        .sort("site_id", "interval_start_s")
    )


def contracts_of(site_id: str, blocks: Sequence[ContractBlock]) -> pl.DataFrame:
    """Contract blocks as ``transforms.settlement.build_settlement`` wants them."""
    return pl.DataFrame(
        {
            "site_id": [site_id] * len(blocks),
            "start_s": [int(b.start_s) for b in blocks],
            "end_s": [int(b.end_s) for b in blocks],
            "mw": [float(b.mw) for b in blocks],
            "price_usd_per_mwh": [decimal_of(b.price_usd_per_mwh) for b in blocks],
        },
        schema={
            "site_id": pl.String,
            "start_s": pl.Int64,
            "end_s": pl.Int64,
            "mw": pl.Float64,
            "price_usd_per_mwh": pl.Decimal(38, 6),
        },
    )


def decode_config(config_json: str) -> SiteConfig:
    return msgspec.json.decode(config_json, type=SiteConfig)
