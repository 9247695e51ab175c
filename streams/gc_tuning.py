"""Garbage-collector thresholds for the processes that decode telemetry.

A decoded frame is a few lists of hundreds of numbers, and a worker decodes over a thousand
frames a second. At CPython's default gen-0 threshold (700 container allocations) it then
collects dozens of times a second, and each collection walks every young list element by
element: stage 1 runs 1.14-1.21 times as fast with these thresholds in the same run
(``python -m streams.bench.stage1`` prints both). Collections
still run with these thresholds, only less often; what the agents and the sink keep forms no
reference cycles that grow with traffic (the soak shows RSS flat).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 20, 20)
"""Gen 0 after 50,000 container allocations (CPython: 700); gens 1 and 2 after 20 collections
of the generation below (CPython: 10)."""


def tune_for_throughput() -> None:
    """For a process that does nothing else (the agents' worker)."""
    gc.set_threshold(*THRESHOLDS)


@contextmanager
def throughput_gc() -> Iterator[None]:
    """The same for the duration of a block, the caller's thresholds restored after it."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
