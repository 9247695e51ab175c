"""faust's "seek back to committed offsets", for partitions the group has not committed yet.

When a fetch comes back while the consumer's flow is stopped (a rebalance, or table recovery
after one), faust drops its records and calls ``perform_seek`` so that they are fetched
again from the committed offsets. aiokafka's ``seek_to_committed`` seeks only partitions
whose committed offset is above 0: a partition the group has never committed keeps the
position past the dropped records, and faust never asks for them again. Later records
reveal the gap (``streams.faust_runtime.continuity`` reads it back); when none come, the records
wait for good. Found in CI: two workers joined, the bench sent a few seconds of frames
while the second was still recovering its tables, and that worker's partitions (telemetry
and stage 2's partials, none committed yet) delivered nothing for 300 s.

So with ``auto_offset_reset = earliest`` (the agents'), such a partition goes back to its
earliest offset, where the group starts reading a partition with no commit: what this
worker had already processed of it comes again and is dropped or re-applied as any
re-delivery is. faust's changelog partitions are left alone (their recovery keeps its own
offsets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

CHANGELOG_SUFFIX = "-changelog"


class _Partition(Protocol):
    @property
    def topic(self) -> str: ...


P = TypeVar("P", bound=_Partition)


def never_committed(committed: Mapping[P, int | None]) -> list[P]:
    """The partitions of ``committed`` (partition -> committed offset, None when none) that
    have no commit to go back to, changelog partitions excepted."""
    return [
        tp
        for tp, offset in committed.items()
        if (offset is None or offset <= 0) and not tp.topic.endswith(CHANGELOG_SUFFIX)
    ]


class _Seeker(Protocol):
    """The two calls of aiokafka's ``AIOKafkaConsumer`` used here."""

    async def seek_to_committed(self) -> Mapping[Any, int | None]: ...

    async def seek_to_beginning(self, *partitions: Any) -> bool: ...


async def seek_to_committed_or_earliest(
    consumer: _Seeker, reset: str
) -> Mapping[Any, int | None]:
    """aiokafka ``consumer.seek_to_committed()``, then (with ``reset == "earliest"``) every
    assigned partition it left where it was moved to its earliest offset. Returns what
    ``seek_to_committed`` returns (faust reads it as the committed offsets)."""
    committed = await consumer.seek_to_committed()
    if reset == "earliest":
        fresh = never_committed(committed)
        if fresh:
            await consumer.seek_to_beginning(*fresh)
    return committed
