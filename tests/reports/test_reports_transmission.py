"""The settlement month close reports the avoided 4CP transmission cost (issue #23).

The synthetic site's three settled days are moved to 2025-07-29..31, so that ERCOT's real
July 2025 4CP interval (posted end 7/30/2025 17:00 CDT, ``kylejones_4CP_dates.csv``) has a
row; a curtailment event covers 600 s of it. The report's figure is checked against an
independent Decimal calculation of 16 TAC §25.192(b)(1)'s tag x rate.
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import polars as pl

from schemas.site import ContractBlock, SiteConfig
from streams.reports.month_close import close_settlement
from transforms.reports.period import Period
from transforms.sources import SHARED_DATA

from .synthetic import SITE, START_S, marts_frames, publish, stub_gate

FOUR_CP = SHARED_DATA / "ercot_market" / "events" / "kylejones_4CP_dates.csv"
CT = ZoneInfo("America/Chicago")
SHIFT = int(datetime(2025, 7, 29, tzinfo=CT).timestamp()) - START_S
PEAK = int(datetime(2025, 7, 30, 17, tzinfo=CT).timestamp()) - 900  # interval START
RATE = "5.5"
BASELINE_W = 80_000_000


def site(method: str = "4CP") -> SiteConfig:
    return msgspec.convert(
        {
            "site_id": SITE,
            "name": "t",
            "settlement_point": "LZ_WEST",
            "interconnection_limit_mw": 400.0,
            "contract": [
                msgspec.to_builtins(ContractBlock(start_s=0, end_s=1, mw=0, price_usd_per_mwh=0))
            ],
            "gpu_pools": [],
            "asic_models": [],
            "meters": [],
            "four_cp_method": method,
            "four_cp_peaks_file": str(FOUR_CP),
            "transmission_rate_usd_per_kw_year": float(RATE),
        },
        SiteConfig,
    )


def july_marts(marts: Path) -> pl.DataFrame:
    settlement = marts_frames()["settlement"].with_columns(pl.col("interval_start_s") + SHIFT)
    event = {
        "event_id": "4cp-1",
        "site_id": SITE,
        "kind": "ended",
        "reasons": ["4cp"],
        "reason_details": ["4cp:window"],
        "issued_at_s": float(PEAK - 300),
        "target_mining_w": 0.0,
        "baseline_mining_w": float(BASELINE_W),
        "deadline_s": float(PEAK),
        "achieved_at_s": float(PEAK - 280),
        "response_time_s": 20.0,
        "deadline_met": True,
        "curtailed_wh": 1.0,
        "ended_at_s": float(PEAK + 600),
        "ts_s": float(PEAK + 600),
    }
    publish(marts, {"settlement": settlement, "curtailment_events": pl.DataFrame([event])})
    return settlement


def peak_mwh(settlement: pl.DataFrame) -> tuple[Decimal, Decimal]:
    """POI MWh of the peak interval and the mining MWh curtailed in it, in plain Decimal:
    the event's baseline over the 600 s it covers less the mining metered over them."""
    row = settlement.filter(pl.col("interval_start_s") == PEAK).row(0, named=True)
    poi, mining = Decimal(str(row["poi_mwh"])), Decimal(str(row["mining_mwh"]))
    curtailed = max(
        Decimal(BASELINE_W) * 600 / Decimal("3.6e9") - mining * 600 / 900, Decimal(0)
    ).quantize(Decimal("0.000001"))
    return poi, curtailed


def test_month_close_reports_the_avoided_cost_of_the_year(tmp_path: Path) -> None:
    settlement = july_marts(tmp_path / "m")
    got = close_settlement(
        tmp_path / "m", Period.month("2025-07"), tmp_path / "o", gate=stub_gate, site=site()
    )
    poi, curtailed = peak_mwh(settlement)
    # the tag over n = 4 peaks
    tag = poi * 4000 / 4
    base_tag = (poi + curtailed) * 4000 / 4
    assert curtailed > 0
    t = got.report.transmission
    assert t is not None
    r = t.row(0, named=True)
    assert (t.height, r["year"], r["method"], r["peaks"]) == (1, 2025, "4CP", 1)
    assert r["rate_usd_per_kw_year"] == RATE
    assert r["tag_kw"] == tag and r["baseline_tag_kw"] == base_tag
    assert r["transmission_usd"] == (tag * Decimal(RATE)).quantize(Decimal("0.01"))
    avoided = ((base_tag - tag) * Decimal(RATE)).quantize(Decimal("0.01"))
    assert r["avoided_usd"] == avoided == Decimal("38128.12")
    with got.files.csvs["transmission"].open() as fh:
        assert Decimal(next(csv.DictReader(fh))["avoided_usd"]) == avoided
    page = got.files.html.read_text()
    assert "Avoided transmission cost (4CP)" in page and "§25.192(b)(1)" in page
    assert str(avoided) in page.replace(",", "")


def test_12cp_and_no_peaks_file(tmp_path: Path) -> None:
    settlement = july_marts(tmp_path / "m")
    # The same rows read as 12CP: July's peak is the only one posted, so one peak, n = 12.
    got = close_settlement(
        tmp_path / "m",
        Period.month("2025-07"),
        tmp_path / "o",
        gate=stub_gate,
        site=site("12CP"),
    )
    t = got.report.transmission
    assert t is not None and t["peaks"].to_list() == [1] and t["method"].to_list() == ["12CP"]
    _, curtailed = peak_mwh(settlement)
    avoided = (curtailed * 4000 * Decimal(RATE) / 12).quantize(Decimal("0.01"))
    assert t["avoided_usd"].to_list() == [avoided] == [Decimal("12709.37")]
    without = msgspec.structs.replace(site(), four_cp_peaks_file=None)
    got = close_settlement(
        tmp_path / "m", Period.month("2025-07"), tmp_path / "o2", gate=stub_gate, site=without
    )
    assert got.report.transmission is None and "transmission" not in got.files.csvs
