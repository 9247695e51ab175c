"""Surplus events: open, material updates, close, energy integration, DST."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from schemas.events import SitePower
from streams.decisions.surplus import SurplusConfig, SurplusState, surplus_step

from .conftest import T0
from .helpers import power


def series(
    surpluses: Sequence[float | None], mining: float = 0.0, start: int = T0
) -> list[SitePower]:
    """SitePower with the given surplus (W) per second; None leaves a missing second."""
    out = []
    for i, s in enumerate(surpluses):
        if s is not None:
            # surplus = contract - ai - overhead with contract 120 kW and overhead 0.
            out.append(power(start + i, ai=120_000.0 - s, overhead=0.0, mining=mining))
    return out


def run(powers: list[SitePower], cfg: SurplusConfig | None = None):
    return surplus_step(SurplusState(site_id="s1"), powers, cfg)


@pytest.mark.parametrize(
    ("surpluses", "kinds"),
    [
        ([0.0, 0.0], []),  # exactly at the threshold: no surplus
        ([-5e3, 10e3, 10e3, 0.0], [("open", 1), ("close", 3)]),
        # 5% of 10 kW = 500 W: 10.4 kW is not material, 10.5 kW is.
        ([10e3, 10.4e3, 10.5e3, 10.9e3, 9.9e3], [("open", 0), ("update", 2), ("update", 4)]),
        ([10e3, 20e3, -1.0], [("open", 0), ("update", 1), ("close", 2)]),
        # Gap of more than 5 s: closed at the last second seen + 1, then reopened.
        ([10e3, 10e3] + [None] * 6 + [10e3], [("open", 0), ("close", 2), ("open", 8)]),
        ([10e3] + [None] * 5 + [10e3], [("open", 0)]),
    ],
)
def test_event_kinds(surpluses: list[float | None], kinds: list[tuple[str, int]]) -> None:
    _, events = run(series(surpluses))
    assert [(e.kind, int(e.ts_s - T0)) for e in events] == kinds


@pytest.mark.parametrize(
    ("cfg", "surpluses", "n_updates"),
    [
        # Absolute 1 MW on a 100 MW surplus fires before 5% (5 MW).
        (SurplusConfig(), [100e6, 101e6], 1),
        (SurplusConfig(update_abs_w=None), [100e6, 101e6, 104.9e6], 0),
        (SurplusConfig(update_abs_w=None), [100e6, 105e6], 1),
        (SurplusConfig(update_fraction=None, update_abs_w=None), [1e6, 50e6, 2e6], 0),
        (SurplusConfig(threshold_w=5e6), [4e6, 6e6, 5e6], 0),
    ],
)
def test_materiality(cfg: SurplusConfig, surpluses: list[float], n_updates: int) -> None:
    _, events = run(series(surpluses), cfg)
    assert sum(e.kind == "update" for e in events) == n_updates


@pytest.mark.parametrize(
    ("surplus", "mining", "absorbed_w"),
    [
        (20e3, 15e3, 15e3),
        (20e3, 60e3, 20e3),  # mining above the surplus absorbs only the surplus
        (20e3, 0.0, 0.0),
    ],
)
def test_energy_integration(surplus: float, mining: float, absorbed_w: float) -> None:
    n = 1800  # half an hour of seconds
    state, events = run(series([surplus] * n + [-1.0], mining=mining))
    close = events[-1]
    assert close.kind == "close"
    assert close.end_s == T0 + n
    assert close.energy_wh == pytest.approx(surplus * 0.5)
    assert close.absorbed_wh == pytest.approx(absorbed_w * 0.5)
    assert close.unabsorbed_wh == pytest.approx((surplus - absorbed_w) * 0.5)
    assert close.absorbed_w == absorbed_w
    assert state.open is None


def test_rejects_out_of_order_and_other_site() -> None:
    state, _ = run(series([1e3, 1e3]))
    with pytest.raises(ValueError, match="is not after"):
        surplus_step(state, series([1e3]))
    other = msgspec.structs.replace(series([1e3], start=T0 + 10)[0], site_id="s2")
    with pytest.raises(ValueError, match="'s2'"):
        surplus_step(state, [other])


def test_state_round_trip_mid_event() -> None:
    s = series([10e3] * 10 + [12e3] * 5 + [-1.0])
    state, first = run(s[:7])
    restored = msgspec.json.decode(msgspec.json.encode(state), type=SurplusState)
    assert restored == state
    assert surplus_step(state, s[7:])[1] == surplus_step(restored, s[7:])[1]


def test_dst_fall_back_day_is_integrated_in_utc() -> None:
    """America/Chicago 2025-11-02 has 25 hours; event times are UTC so nothing repeats."""
    tz = ZoneInfo("America/Chicago")
    day_start = int(datetime(2025, 11, 2, tzinfo=tz).timestamp())
    day_end = int(datetime(2025, 11, 3, tzinfo=tz).timestamp())
    assert day_end - day_start == 25 * 3600
    assert (day_end - day_start) // 900 == 100  # settlement intervals that day
    # 01:00 CDT (06:00Z) to 01:59:59 CST (07:59:59Z): local clocks show one hour twice.
    start = int(datetime(2025, 11, 2, 1, 0, tzinfo=tz).timestamp())
    end = int(datetime(2025, 11, 2, 1, 59, 59, fold=1, tzinfo=tz).timestamp()) + 1
    assert end - start == 7200
    state, events = run(series([10e3] * (end - start) + [-1.0], start=start))
    assert [e.kind for e in events] == ["open", "close"]
    # Two real hours at 10 kW: 20 kWh, though the local wall clock advanced one hour.
    assert events[-1].energy_wh == pytest.approx(20_000.0)
    assert events[-1].end_s - events[-1].start_s == 7200
