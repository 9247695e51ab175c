"""The unit replay moves: one encoded message with the event time it is ordered by.

Every reader yields ``Record``s in its own event-time order; ``merge`` interleaves any number
of such iterators into one globally ordered stream with ``heapq.merge``, which holds one
pending record per source, so memory stays bounded however long the recordings are.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from streams.errors import TerminalError


@dataclass(frozen=True, slots=True)
class Record:
    ts_s: float
    """Event time the record is ordered (and paced) by, UTC seconds."""
    topic: str
    """Base topic name (``telemetry.gpu.v1``), before any namespace."""
    key: bytes
    value: bytes


class OutOfOrder(TerminalError, ValueError):
    """A source yielded records going back in time; the merge would be wrong."""


def checked(source: str, records: Iterable[Record]) -> Iterator[Record]:
    """Pass records through, raising if event time goes backwards within one source."""
    last = float("-inf")
    for n, rec in enumerate(records):
        if rec.ts_s < last:
            raise OutOfOrder(
                f"{source}: record {n} at ts_s={rec.ts_s} is before the previous one "
                f"({last}); each recording must be sorted by time"
            )
        last = rec.ts_s
        yield rec


def merge(sources: dict[str, Iterable[Record]]) -> Iterator[Record]:
    """All records of all sources in event-time order; ties keep the sources' order.

    ``heapq.merge`` is stable across its inputs, so equal timestamps come out in the order
    the sources were given, and the stream is deterministic.
    """
    return heapq.merge(
        *(checked(name, recs) for name, recs in sources.items()), key=lambda r: r.ts_s
    )


def window(records: Iterable[Record], start_s: float, end_s: float) -> Iterator[Record]:
    """Records with ``start_s <= ts_s < end_s``; stops reading at the first one past the end."""
    for rec in records:
        if rec.ts_s >= end_s:
            return
        if rec.ts_s >= start_s:
            yield rec
