"""Set faust's current event for code that runs outside faust's per-event path.

faust keys table writes (changelog partition, RocksDB partition) by the current event, read
from the private context variable ``faust.streams._current_event``; ``take_events`` batches do
not set it in the agent's task, so stage 1 sets it around each batch's table work.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust.streams import _current_event
from faust.types import EventT


@contextmanager
def acting_for(event: EventT[bytes]) -> Iterator[None]:
    """Make ``event`` the current event while tables are read and written."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
