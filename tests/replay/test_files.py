"""FILE mode: formats recognised from headers; recordings replayed at their own times."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from streams.replay.files import UnknownFormat, detect, detect_header, file_sources, scrape_kind
from streams.replay.records import merge
from transforms.sources import SHARED_DATA

FIX = Path(__file__).parents[1] / "fixtures"
ASIC = SHARED_DATA / "asic_miner_api"


@pytest.mark.parametrize(
    ("header", "fmt"),
    [
        (["ts", "phase", "energy_mj", "power_mw"], "nvml_csv"),
        (["timestamp", " power.draw [W]", " utilization.gpu [%]"], "nvidia_smi_csv"),
        (["timestamp", "meter_id", "power_w", "energy_wh"], "meter_csv"),
        (["kind", "event_id", "start", "end"], "grid_events_csv"),
        (["Time", "HB_BUSAVG", "LZ_WEST"], "ercot_rtm_spp_15min"),
        (
            ["DeliveryDate", "DeliveryHour", "DeliveryInterval", "SettlementPointName"],
            "ercot_rt_spp_api",
        ),
        (
            ["DeliveryDate", "HourEnding", "SettlementPoint", "SettlementPointPrice"],
            "ercot_dam_spp_api",
        ),
        (["Datetime", "Price (USD/MWh)"], "ercot_dam_hourly"),
        (["Datetime (UTC)", "Country", "Zone Id"], "emaps_hourly"),
        (["timestamp", "WND", "NG", "avg_CI"], "eia_hourly"),
        (["Date", "Fuel", "Settlement Type", "Total", "0:15"], "ercot_fuel_mix_15min"),
    ],
)
def test_detect_header(header: list[str], fmt: str) -> None:
    assert detect_header(header) == fmt


@pytest.mark.parametrize("header", [["a", "b"], ["Time"], []])
def test_unknown_header(header: list[str]) -> None:
    with pytest.raises(UnknownFormat, match="matches no known recording"):
        detect_header(header)


@pytest.mark.parametrize(
    ("folder", "kind"),
    [
        ("antminer_s19pro_stock_bmminer", "antminer"),
        ("avalon_cgminer", "avalon"),
        ("luxos_antminer_s19kpro", "luxos"),
        ("whatsminer_btminer_api_v1", "whatsminer"),
        ("braiins_os_v25_07_rest", "braiins"),
    ],
)
def test_scrape_kind(folder: str, kind: str) -> None:
    assert scrape_kind(ASIC / folder) == kind
    assert detect(ASIC / folder) == "asic_scrape"


def test_files_replay_at_recorded_times() -> None:
    paths = [
        FIX / "meters.csv",
        FIX / "grid_events.csv",
        FIX / "h100_nvml_trace_head.csv",
        ASIC / "whatsminer_btminer_api_v1",
    ]
    recs = list(merge(file_sources(paths, "site")))
    counts = Counter(r.topic for r in recs)
    assert counts == {
        "telemetry.meter.v1": 3,
        "grid.dispatch.v1": 3,
        "grid.frequency.v1": 6,
        "telemetry.gpu.v1": 40,
        "telemetry.asic.v1": 1,
    }
    assert [r.ts_s for r in recs] == sorted(r.ts_s for r in recs)
    assert recs[0].ts_s == 1751346000.0  # the meters' first scrape, 2025-07-01T05:00Z
