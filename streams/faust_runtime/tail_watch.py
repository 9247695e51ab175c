"""Offsets at the end of a partition that faust fetched but never delivered.

``continuity`` finds offsets faust skipped as soon as a later offset arrives. At the end of
a partition nothing later arrives: around a rebalance faust can drop the rest of a fetch
(its position has moved past those records, so it never asks for them again), and the
partition's last frames then wait for the next frame to reveal the gap. With telemetry
every second that costs a second; with a source that went quiet, its seconds stay open.
Found with two workers joining while a burst of frames landed: the meter partition's last
three frames of the burst were never delivered and the site's first second never closed.

So each worker keeps, per partition it processes, the next offset it expects and since when
that has not moved. A partition of the worker's assignment that has delivered nothing since
it was assigned is watched as well, once faust has fetched from it (its high watermark is
known), from the offset its state expects, else where the group starts it: were its first
fetch dropped as that burst's rest was, no processed batch would ever put it in the watch.
A partition whose next offset is below the broker's high watermark and
has not moved for ``stall_s`` while stage 1 had nothing else to do, or for ``busy_stall_s``
however busy it was, is due: the agent seeks faust's consumer back to it (what is delivered
again below it is dropped as a re-delivery, as always). The longer wait while busy is for a
backlog: faust pauses fetching while the stream's buffer is full, and a partition can then
wait its turn for seconds without anything being lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Key = tuple[str, int]
"""(topic, partition)."""


@dataclass
class TailWatch:
    stall_s: float = 2.0
    busy_stall_s: float = 20.0
    _since: dict[Key, tuple[int, float]] = field(default_factory=dict)
    """Partition -> (next offset expected, when it was first seen at that offset)."""

    def processed(self, key: Key, next_offset: int | None, now: float) -> None:
        """A batch of ``key`` was processed; ``next_offset`` is what the state expects next."""
        if next_offset is None:
            return
        seen = self._since.get(key)
        if seen is None or seen[0] != next_offset:
            self._since[key] = (next_offset, now)

    def assigned(self, key: Key, next_offset: int, now: float) -> None:
        """``key`` is ours but has delivered nothing since the last rebalance: watch it from
        ``next_offset`` (no-op once it is watched; a processed batch moves it on)."""
        self._since.setdefault(key, (next_offset, now))

    def unwatched(self, keys: Iterable[Key]) -> list[Key]:
        return [k for k in keys if k not in self._since]

    def watched(self) -> list[Key]:
        return list(self._since)

    def forget(self) -> None:
        """Partitions were revoked or assigned: start over (the new owner watches them)."""
        self._since.clear()

    def due(
        self, highwaters: Mapping[Key, int | None], now: float, *, busy: bool = False
    ) -> list[tuple[Key, int]]:
        """Partitions to seek back, with the offset to seek to; each is then left alone for
        another wait (the seek takes a fetch to show). ``busy``: stage 1 processed a batch
        within the last ``stall_s``."""
        wait = self.busy_stall_s if busy else self.stall_s
        out: list[tuple[Key, int]] = []
        for key, (nxt, since) in self._since.items():
            high = highwaters.get(key)
            if high is not None and nxt < high and now - since >= wait:
                out.append((key, nxt))
        for key, nxt in out:
            self._since[key] = (nxt, now)
        return out
