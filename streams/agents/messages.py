"""What the agents keep and pass among themselves (not public contracts).

- ``SiteInput``: the internal per-site topic (keyed by site id, co-partitioned with
  ``site.power.partial.v1``) that brings stage 2 everything that is not a partial: grid
  signals fanned out per site, ticks, late readings and quality findings of stage 1.
- ``Stage1State``: per telemetry partition, the running partial sums and the ASIC alert
  state of the miners that partition carries.
- ``codec``: decision states go into faust tables as msgpack bytes of their Structs.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from schemas.grid import DispatchSignal, FrequencySample, HashpriceSignal, PriceSignal
from schemas.market_positions import AncillaryAward
from streams.decisions.alerts import AlertState, QualityFinding
from streams.decisions.breakeven import Hashprice
from streams.decisions.power import LateReadings, PartialState


class PriceIn(msgspec.Struct, tag="price", kw_only=True):
    signal: PriceSignal


class DispatchIn(msgspec.Struct, tag="dispatch", kw_only=True):
    signal: DispatchSignal


class FrequencyIn(msgspec.Struct, tag="frequency", kw_only=True):
    signal: FrequencySample


class HashpriceIn(msgspec.Struct, tag="hashprice", kw_only=True):
    signal: Hashprice


class HashpriceFeedIn(msgspec.Struct, tag="hashprice_feed", kw_only=True):
    """A network hashprice from ``grid.hashprice.v1`` (``HashpriceIn`` is an override)."""

    signal: HashpriceSignal


class AwardIn(msgspec.Struct, tag="award", kw_only=True):
    """An ancillary award of the site: its MW are reserved from economic and 4CP curtailment."""

    signal: AncillaryAward


class TickIn(msgspec.Struct, tag="tick", kw_only=True):
    wall_s: float
    """Wall clock of the worker that sent the tick."""


class LateIn(msgspec.Struct, tag="late", kw_only=True):
    items: list[LateReadings]


class QualityIn(msgspec.Struct, tag="quality", kw_only=True):
    findings: list[QualityFinding]


SiteInput = (
    PriceIn
    | DispatchIn
    | FrequencyIn
    | HashpriceIn
    | HashpriceFeedIn
    | AwardIn
    | TickIn
    | LateIn
    | QualityIn
)
GridInput = PriceIn | DispatchIn | FrequencyIn | HashpriceIn | HashpriceFeedIn | AwardIn


class Stage1State(msgspec.Struct, kw_only=True):
    """State of one telemetry partition."""

    partial: PartialState = msgspec.field(default_factory=PartialState)
    next_offset: int | None = None
    """Offset after the last message of this partition processed (see ``continuity``)."""
    alerts: dict[str, AlertState] = {}
    """site id -> alerts on the ASIC frames of this partition (temperature, hashrate)."""


S = TypeVar("S")

_encoder = msgspec.msgpack.Encoder()
_input_decoder = msgspec.msgpack.Decoder(SiteInput)
_decoders: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {}


def encode(obj: msgspec.Struct) -> bytes:
    return _encoder.encode(obj)


def decode_state(raw: bytes, kind: type[S]) -> S:
    """A state back from table bytes; raises ``msgspec.DecodeError``/``ValidationError``."""
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.msgpack.Decoder(kind)
    result: S = dec.decode(raw)
    return result


def decode_input(raw: bytes) -> SiteInput:
    result: SiteInput = _input_decoder.decode(raw)
    return result
