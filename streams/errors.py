"""The root of Spillway's errors, and whether retrying can help.

::

    SpillwayError (transient: bool)
    ├── TransientError   the same call may succeed later (a broker moving, a device busy,
    │                    a lock held by another process): retry with backoff
    └── TerminalError    retrying gives the same error: fix the input or the configuration

Every project exception derives from one of the two kinds *and* keeps its builtin base
(``class SiteFileError(TerminalError, ValueError)``), so ``except ValueError`` still works.
The CLI and the retry loops read ``exc.transient``; nothing else decides retryability.

This module imports nothing of the project, so the pure packages (schemas, transforms)
may import it without a cycle.
"""

from __future__ import annotations

EX_TEMPFAIL = 75
"""sysexits.h: a temporary failure; the caller may try again later."""


class SpillwayError(Exception):
    """Root of every Spillway error."""

    transient: bool = False
    """True: the same call may succeed later; False: fix the input or configuration."""


class TransientError(SpillwayError):
    """The same call may succeed later: retry with backoff."""

    transient = True


class TerminalError(SpillwayError):
    """Retrying gives the same error: the message says what to fix."""

    transient = False


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is a Spillway error that says retrying may help."""
    return isinstance(exc, SpillwayError) and exc.transient
