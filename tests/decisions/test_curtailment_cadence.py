"""A curtailment is achieved only on readings taken after its command: a miner polled every
60 s shows its pre-command draw for up to a minute (docs/cadence.md)."""

from __future__ import annotations

import msgspec
import pytest

from schemas.events import SitePower
from streams.decisions.curtailment import ControllerInput

from .conftest import T0
from .helpers import power
from .test_curtailment import dispatch, run


def held(ts: int, mining: float, reading_s: float | None) -> SitePower:
    return msgspec.structs.replace(power(ts, mining=mining), mining_reading_s=reading_s)


@pytest.mark.parametrize(
    ("readings", "achieved_at"),
    [
        # Every second below target, but held from a poll before the command (T0) until the
        # poll of T0 + 30: achieved at T0 + 30, not T0 + 1.
        ([(s, 15_000.0, T0 - 5) for s in range(1, 30)] + [(30, 15_000.0, T0 + 30)], T0 + 30),
        # A reading stamped at the command's time is after it.
        ([(1, 15_000.0, T0)], T0 + 1),
        # Unknown stamp (older producer): the second decides, as before.
        ([(1, 15_000.0, None)], T0 + 1),
        # Fresh readings above target: not achieved however new.
        ([(s, 40_000.0, T0 + s) for s in range(1, 30)], None),
    ],
)
def test_achieved_waits_for_a_reading_after_the_command(
    readings: list[tuple[int, float, float | None]], achieved_at: int | None
) -> None:
    inputs: list[ControllerInput] = [power(T0), dispatch(T0, reduce_to_mw=0.015)]
    inputs += [held(T0 + s, w, r) for s, w, r in readings]
    _, out = run(inputs)
    achieved = [e for e in out.events if e.kind == "achieved"]
    assert [e.achieved_at_s for e in achieved] == ([] if achieved_at is None else [achieved_at])
