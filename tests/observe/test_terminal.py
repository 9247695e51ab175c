"""The terminal view: render a known state and read the figures back from the text."""

from __future__ import annotations

import pytest
from rich.console import Console

from streams.observe.state import ObserveState, fold, note_received, set_lag
from streams.observe.terminal import power_bar, render, sparkline
from tests.observe.helpers import (
    T0,
    alert,
    carbon,
    curtailment,
    deadletter,
    power,
    price,
    site,
    surplus,
)


def text_of(state: ObserveState, now_s: float, width: int = 200) -> str:
    console = Console(record=True, width=width, force_terminal=False, color_system=None)
    console.print(render(state, now_s))
    return console.export_text()


def full_state() -> ObserveState:
    s = ObserveState()
    for m in (site(), power(T0 - 1, ai_mw=150.0), power(T0), surplus(),
              curtailment("achieved", achieved_at_s=T0 + 12.5, response_time_s=12.5,
                          deadline_met=True),
              curtailment("issued", event_id="c2", reasons=["site_limit"],
                          reason_details=["AI spike over contract"], issued=T0 + 40),
              alert(), price(T0 - 900, 38.0), price(T0, 412.5),
              carbon(T0 - T0 % 3600, 347.2), deadletter()):
        fold(s, "t", m, T0 + 50)
    note_received(s, "site.power.v1", 30, T0 + 49)
    set_lag(s, {"site.power.v1": 42, "alerts.v1": 0}, T0 + 50)
    return s


@pytest.mark.parametrize(
    "figure",
    [
        "Test site (s1)", "LZ_WEST",
        # power by use and the lines it is held against
        "190.0 MW", "110.0 MW", "10.0 MW", "310.0 MW", "400.0 MW", "420.0 MW",
        "78% used",  # 310 / 400
        "74% of limit",  # 310 / 420 = 73.8 %
        # surplus: contract - AI - overhead = 400 - 190 - 10
        "surplus now 200.0 MW", "sold back 90.0 MW",
        # curtailments: reasons, response time achieved, and the running clock of c2
        "economic, grid", "ECRS deployment", "12.5 s", "met", "site_limit", "10.0 s …",
        # alerts
        "meter_silent", "critical", "revenue meter poi silent",
        # price vs breakeven (50 / (0.024 x 21.667) = 96.15)
        "RT $412.50/MWh", "$96.15/MWh", "S21 $119.05", "S19jPro $69.44",
        # carbon: 310 MW x 347.2 g/kWh = 107.6 t/h
        "347 gCO2eq/kWh", "107.6 tCO2eq/h",
        # throughput: 30 messages at T0+49, seen over the 2 seconds to T0+50 -> 15/s; lag
        "site.power.v1", "15.0", "42", "telemetry.gpu.v1",
    ],
)
def test_render_shows_key_figures(figure):
    assert figure in text_of(full_state(), T0 + 50)


def test_render_of_an_empty_state_says_what_is_missing():
    text = text_of(ObserveState(), T0)
    for phrase in ("waiting for a site", "no site power yet", "no real-time price yet",
                   "no intensity yet", "nothing received yet"):
        assert phrase in text


def test_deficit_is_shown_as_deficit():
    s = ObserveState()
    fold(s, "t", power(T0, ai_mw=395.0, overhead_mw=20.0), T0)
    assert "deficit now 15.0 MW" in text_of(s, T0)


@pytest.mark.parametrize(
    ("values", "width", "expected"),
    [
        ([], 5, ""),
        ([None, None], 5, ""),
        ([1.0, 1.0, 1.0], 5, "▁▁▁"),
        ([0.0, 7.0], 5, "▁█"),
        ([0.0, None, 7.0], 5, "▁ █"),
        ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8, "▁▂▃▄▅▆▇█"),
        ([9.0, 0.0, 7.0], 2, "▁█"),  # only the last `width` values count
    ],
)
def test_sparkline(values, width, expected):
    assert sparkline(values, width) == expected


def test_power_bar_positions():
    # Scale is the interconnection limit, 420 MW over 42 cells: 10 MW a cell.
    s = ObserveState()
    fold(s, "t", site(), T0)
    fold(s, "t", power(T0), T0)
    bar = power_bar(s, width=42).plain
    assert len(bar) == 42
    assert bar[:31] == "█" * 31  # 19 AI + 11 mining + 1 overhead cells
    assert bar[31:39] == " " * 8
    assert bar[39] == "│"  # contract at 400 MW: the 40th cell
    assert bar[41] == "┃"  # limit at 420 MW: the last cell
