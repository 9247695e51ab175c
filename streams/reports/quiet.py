"""A quality gate run with its terminal noise held back (stderr is I/O, so it lives here and
not with the pure report builders of ``transforms.reports``)."""

from __future__ import annotations

import contextlib
import io
import sys

import polars as pl

from transforms.gates import GateResult
from transforms.reports.common import Gate


def quiet(gate: Gate) -> Gate:
    """``gate`` with its stderr held back: GX draws a progress bar per expectation (its
    ``tqdm`` gets ``disable=`` explicitly, so TQDM_DISABLE does not work), which drowns
    the report's own progress lines. What it wrote is shown if the gate raises."""

    def run(mart: str, frame: pl.DataFrame) -> GateResult:
        held = io.StringIO()
        try:
            with contextlib.redirect_stderr(held):
                return gate(mart, frame)
        except Exception:
            sys.stderr.write(held.getvalue())
            raise

    return run
