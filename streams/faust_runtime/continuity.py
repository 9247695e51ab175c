"""Input continuity per source partition: what faust delivered vs what was processed.

faust can hand a stream offsets out of sequence around a rebalance (a fetch made before
the seek to the committed offsets is delivered after it: faust-streaming issues 216, 221,
606) and it then commits the skipped offsets as a "gap". Seen here after a worker stalled
past its session timeout: stage 1 jumped 20 seconds of a partition's frames and later
counted them late; another run lost one frame from the middle of a batch. So each agent
keeps the next offset it expects per source partition and lines every batch up with it:

- offsets below it were processed already (a re-delivery after a rewind), and an offset
  repeated within the batch is the same message twice;
- every hole between the expected offset and the batch's offsets, or between two of them,
  is a gap: the agent reads those offsets back from Kafka itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Continuity:
    """How one batch of one partition lines up with the next offset expected."""

    keep: list[int]
    """Indexes into the batch of the messages to process, in offset order, one per offset,
    none below the expected offset."""
    again: list[int]
    """Indexes of the messages below the expected offset, in batch order (re-deliveries)."""
    gaps: list[tuple[int, int]]
    """``[start, end)`` offset ranges never delivered, to read back, ascending."""


def check_batch(expected: int | None, offsets: list[int]) -> Continuity:
    """Line up a batch (its offsets, in delivery order) with ``expected`` (None: nothing
    processed yet, so only holes between the batch's own offsets are gaps)."""
    keep: list[int] = []
    again: list[int] = []
    seen: set[int] = set()
    for i in sorted(range(len(offsets)), key=offsets.__getitem__):
        o = offsets[i]
        if expected is not None and o < expected:
            again.append(i)
        elif o not in seen:
            seen.add(o)
            keep.append(i)
    again.sort()
    gaps: list[tuple[int, int]] = []
    nxt = expected
    for i in keep:
        o = offsets[i]
        if nxt is not None and o > nxt:
            gaps.append((nxt, o))
        nxt = o + 1
    return Continuity(keep=keep, again=again, gaps=gaps)
