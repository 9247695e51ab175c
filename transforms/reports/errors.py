"""Errors of the report builders. None of them is transient: retrying the same command with
the same published marts gives the same error; the message says what to fix."""

from __future__ import annotations

from streams.errors import TerminalError


class ReportError(TerminalError, ValueError):
    """Root of the report errors."""


class ReportInputError(ReportError):
    """An argument or an input frame is malformed (bad month, missing column, no site)."""


class NothingPublished(ReportError):
    """No published rows for the table, period and site asked for."""
