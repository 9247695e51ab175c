"""4CP risk windows from a forecast file named by the site file, not a fixed list (issue #23).

The small site (``infra/sites/small.toml``, no ``policy.peak_windows``) is given a
peak-probability file: the controller curtails in the windows it yields and not outside,
only in the method's months; without a file the fixed list stays (and says so).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schemas.site import PeakWindow
from streams.decisions.curtailment import ControllerState, Tick, controller_step
from streams.decisions.fleet import fleet_roster
from streams.decisions.peak_risk import four_cp_windows
from streams.site_file import SiteFileError, load_site_file
from transforms.four_cp import read_posted_peaks
from transforms.sources import SHARED_DATA

SMALL = Path(__file__).parents[2] / "infra" / "sites" / "small.toml"
FOUR_CP = SHARED_DATA / "ercot_market" / "events" / "kylejones_4CP_dates.csv"
CT = ZoneInfo("America/Chicago")


def local_s(y: int, m: int, d: int, h: int, minute: int = 0) -> int:
    return int(datetime(y, m, d, h, minute, tzinfo=CT).timestamp())


JULY = local_s(2026, 7, 15, 16)  # 16:00-17:00 CDT at 0.8
MAY = local_s(2026, 5, 20, 16)  # 0.9, but May is not a 4CP month


def site_file(tmp_path: Path, rows: list[tuple[int, float]], extra: str = "") -> Path:
    (tmp_path / "risk.csv").write_text(
        "interval_start_s,peak_probability\n" + "".join(f"{t},{p}\n" for t, p in rows)
    )
    text = SMALL.read_text().replace(
        'site_id = "small"\n', f'site_id = "small"\nfour_cp_risk_file = "risk.csv"\n{extra}'
    )
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def probability_day() -> list[tuple[int, float]]:
    day = local_s(2026, 7, 15, 0)
    rows = [(day + 900 * k, 0.8 if 64 <= k < 68 else 0.1) for k in range(96)]
    return [*rows, (MAY, 0.9)]


def curtails_at(path: Path, ts: int) -> bool:
    site = load_site_file(path).site
    state, out = controller_step(
        ControllerState(site_id=site.site_id), [Tick(ts_s=ts)], site, fleet_roster(site)
    )
    return state.event is not None and out.events[0].reasons == ["4cp"]


def test_controller_curtails_in_the_forecast_window_and_not_outside(tmp_path: Path) -> None:
    path = site_file(tmp_path, probability_day())
    site = load_site_file(path).site
    assert site.policy.peak_windows == []  # no fixed list: the windows are the forecast's
    assert four_cp_windows(site) == [PeakWindow(start_s=JULY, end_s=JULY + 3600)]
    assert curtails_at(path, JULY + 60)
    assert curtails_at(path, JULY - 300)  # the controller's 5-minute lead
    assert not curtails_at(path, JULY - 301)
    assert not curtails_at(path, JULY + 3600)
    assert not curtails_at(path, MAY + 60)  # 0.9 in May: not a 4CP month


def test_12cp_is_a_parameter_and_adds_months(tmp_path: Path) -> None:
    path = site_file(tmp_path, probability_day(), 'four_cp_method = "12CP"\n')
    assert [w.start_s for w in load_site_file(path).site.four_cp_risk_windows] == [MAY, JULY]
    assert curtails_at(path, MAY + 60)


def test_threshold_is_a_parameter(tmp_path: Path) -> None:
    path = site_file(tmp_path, probability_day(), "four_cp_risk_threshold = 0.05\n")
    day = local_s(2026, 7, 15, 0)
    windows = load_site_file(path).site.four_cp_risk_windows
    assert windows == [PeakWindow(start_s=day, end_s=day + 86400)]


def test_no_window_outside_june_to_september(tmp_path: Path) -> None:
    # A whole year at probability 1 from 16:00 to 18:00 local every day.
    rows: list[tuple[int, float]] = []
    day = datetime(2026, 1, 1, tzinfo=CT)
    while day.year == 2026:
        rows += [(local_s(day.year, day.month, day.day, 16) + 900 * k, 1.0) for k in range(8)]
        day += timedelta(days=1)
    windows = load_site_file(site_file(tmp_path, rows)).site.four_cp_risk_windows
    months = {datetime.fromtimestamp(w.start_s, CT).month for w in windows}
    assert months == {6, 7, 8, 9} and len(windows) == 30 + 31 + 31 + 30
    path = site_file(tmp_path, rows, 'four_cp_method = "12CP"\n')
    assert len(load_site_file(path).site.four_cp_risk_windows) == 365


def test_without_a_file_the_fixed_list_remains_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="streams.decisions.peak_risk"):
        site = load_site_file(SMALL).site
    assert site.four_cp_risk_windows == [] and four_cp_windows(site) is site.policy.peak_windows
    assert "no four_cp_risk_file: 4CP windows are the fixed policy.peak_windows" in caplog.text


def test_a_bad_risk_file_or_hand_written_windows_refuse_the_site(tmp_path: Path) -> None:
    path = site_file(tmp_path, [])
    (tmp_path / "risk.csv").write_text("interval_start_s,p\n1,0.5\n")
    with pytest.raises(SiteFileError, match="four_cp_risk_file: .*risk.csv: expected columns"):
        load_site_file(path)
    path = site_file(tmp_path, [], "four_cp_risk_windows = []\n")
    with pytest.raises(SiteFileError, match="four_cp_risk_windows: derived"):
        load_site_file(path)


def test_real_4cp_intervals_fall_in_summer_afternoon_windows(tmp_path: Path) -> None:
    # A climatological prior (every June-September day, 15:00-19:00 local at 0.6) read
    # through the site file: ERCOT's posted 4CP intervals of 2023 and 2025 are inside its
    # windows (a check of the local-time handling from posted interval ends to windows).
    rows: list[tuple[int, float]] = []
    for year in (2023, 2025):
        day = datetime(year, 6, 1, tzinfo=CT)
        while day.month <= 9:
            start = local_s(day.year, day.month, day.day, 15)
            rows += [(start + 900 * k, 0.6) for k in range(16)]
            day += timedelta(days=1)
    windows = load_site_file(site_file(tmp_path, rows)).site.four_cp_risk_windows
    peaks = read_posted_peaks(FOUR_CP)["interval_start_s"].to_list()
    real = [p for p in peaks if datetime.fromtimestamp(p, CT).year in (2023, 2025)]
    assert len(real) == 8
    assert all(any(w.start_s <= p < w.end_s for w in windows) for p in real)
