"""Input continuity per source partition: what faust delivered vs what was processed.

faust can hand a stream offsets out of sequence around a rebalance (a fetch made before
the seek to the committed offsets is delivered after it: faust-streaming issues 216, 221,
606) and it then commits the skipped offsets as a "gap". Seen here after a worker stalled
past its session timeout: stage 1 jumped 20 seconds of a partition's frames, and later
counted them as late. So each agent keeps, with its state, the next offset it expects per
source partition, and checks every batch against it:

- offsets below it were processed already (a re-delivery after a rewind): dropped;
- a batch that starts above it left a gap: the agent reads the missing offsets back from
  Kafka itself and processes them first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Continuity:
    """How one batch of one partition lines up with the next offset expected."""

    drop: int
    """Leading messages of the batch already processed (offset < expected)."""
    gap: tuple[int, int] | None
    """``[start, end)`` offsets never delivered, to read back before the batch; None: none."""


def check_batch(expected: int | None, offsets: list[int]) -> Continuity:
    """Line up a batch (its offsets, ascending) with ``expected`` (None: nothing yet)."""
    if expected is None or not offsets:
        return Continuity(drop=0, gap=None)
    drop = 0
    for offset in offsets:
        if offset >= expected:
            break
        drop += 1
    if drop == len(offsets):
        return Continuity(drop=drop, gap=None)
    first = offsets[drop]
    return Continuity(drop=drop, gap=(expected, first) if first > expected else None)
