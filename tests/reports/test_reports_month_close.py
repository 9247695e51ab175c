"""Month close over published marts: CSV rows add up to the summary CSV and to the figures
on the HTML page, the page is well-formed and self-contained, local time holds the
fall-back day whole, and the totals match a plain-Python sum of the site's power."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from streams.reports.month_close import close_carbon, close_settlement
from tests.reports.synthetic import (
    END_S,
    START_S,
    intensity_of,
    marts_frames,
    publish,
    site_power_rows,
    stub_gate,
)
from transforms.reports.period import Period

MONTH = Period.month("2025-11")
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "source"}


@dataclass
class Page(HTMLParser):
    """Checks tag balance and collects data-metric figures, SVGs and external references."""

    def __post_init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.figures: dict[str, tuple[str, str]] = {}
        self.tags: Counter[str] = Counter()
        self.external: list[str] = []
        self._metric: tuple[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(str(a[key]))
        if tag == "script":
            self.external.append("<script>")
        if "data-metric" in a:
            self._metric = (str(a["data-metric"]), str(a["data-value"]))
            self._text = ""
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1  # <rect .../> in SVG: balanced by itself

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if self._metric is not None and tag == "td":
            self.figures[self._metric[0]] = (self._metric[1], self._text)
            self._metric = None

    def handle_data(self, data: str) -> None:
        if self._metric is not None:
            self._text += data


def parse_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return marts_frames()


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory,
           frames: dict[str, pl.DataFrame]) -> dict[str, object]:
    root = tmp_path_factory.mktemp("close")
    marts = root / "marts"
    publish(marts, frames)
    # an older generation still on disk, with other numbers: the manifest must win
    stale = frames["settlement"].with_columns(pl.col("net_usd") * 2)
    old = marts / "parquet/settlement/date=2025-11-02/part-g000000.parquet"
    stale.write_parquet(old)
    return {"settlement": close_settlement(marts, MONTH, root / "out", gate=stub_gate),
            "carbon": close_carbon(marts, MONTH, root / "out", gate=stub_gate),
            "marts": marts}


SETTLEMENT_SUMS = ["ai_mwh", "mining_mwh", "overhead_mwh", "poi_mwh", "forward_mwh",
                   "sell_back_mwh", "purchase_mwh", "hashrate_ph_days", "forward_usd",
                   "rt_sell_back_usd", "rt_purchase_usd", "mining_revenue_usd",
                   "dr_credit_usd", "ancillary_credit_usd", "four_cp_usd", "net_usd"]
CARBON_SUMS = ["ai_mwh", "mining_mwh", "overhead_mwh", "total_mwh", "cfe_matched_mwh",
               "location_g", "ai_location_g", "mining_location_g", "market_g", "ai_market_g",
               "mining_market_g"]


@pytest.mark.parametrize(("kind", "main", "sums"), [
    ("settlement", "intervals", SETTLEMENT_SUMS),
    ("carbon", "hours", CARBON_SUMS),
])
def test_csv_rows_sum_to_summary_and_daily_and_html(closed: dict[str, object], kind: str,
                                                    main: str, sums: list[str]) -> None:
    files = closed[kind].files  # type: ignore[attr-defined]
    rows = read_csv(files.csvs[main])
    summary = read_csv(files.csvs["summary"])
    daily = read_csv(files.csvs["daily"])
    assert len(summary) == 1
    figures = parse_page(files.html).figures
    for col in sums:
        total = sum((Decimal(r[col]) for r in rows), Decimal(0))
        assert Decimal(summary[0][col]) == total, col
        assert sum((Decimal(d[col]) for d in daily), Decimal(0)) == total, col
        value, shown = figures[col]
        assert Decimal(value) == total, col
        if col.endswith("_usd"):  # shown as money, from the Decimal
            sign = "-" if total < 0 else ""
            assert shown == f"{sign}${abs(total):,.2f}", col


def test_net_is_the_sum_of_components_in_every_csv_row(closed: dict[str, object]) -> None:
    rows = read_csv(closed["settlement"].files.csvs["intervals"])  # type: ignore[attr-defined]
    parts = SETTLEMENT_SUMS[8:-1]
    for r in rows:
        assert sum((Decimal(r[c]) for c in parts), Decimal(0)) == Decimal(r["net_usd"])
        assert Decimal(r["net_usd"]) == Decimal(r["net_usd"]).quantize(Decimal("0.01"))


def test_totals_match_plain_python_energy_of_the_site(closed: dict[str, object]) -> None:
    """Independent: each 1-minute sample is held 60 s; W x 60 s / 3.6e9 = MWh (exact, as
    every sample is a whole number of Wh)."""
    power = site_power_rows()
    summary = read_csv(closed["settlement"].files.csvs["summary"])[0]  # type: ignore[attr-defined]
    for col in ("ai", "mining", "overhead"):
        exact = sum(Decimal(int(r[f"{col}_w"])) * 60 for r in power) / Decimal(3_600_000_000)
        assert Decimal(summary[f"{col}_mwh"]) == exact
    forward = Decimal(300) * Decimal(END_S - START_S) / 3600  # 300 MW over 73 hours
    assert Decimal(summary["forward_mwh"]) == forward
    assert summary["intervals_expected"] == "2884"  # 29 x 96 + 100
    assert summary["intervals_settled"] == "292"  # 96 + 100 + 96
    assert summary["intervals_missing"] == str(2884 - 292)


def test_carbon_matches_plain_python_location_based(closed: dict[str, object]) -> None:
    power = site_power_rows()
    grams = 0.0
    for r in power:
        hour = r["ts_s"] - r["ts_s"] % 3600
        grams += r["total_w"] * 60 / 3.6e6 * intensity_of(hour)  # kWh x g/kWh
    summary = read_csv(closed["carbon"].files.csvs["summary"])[0]  # type: ignore[attr-defined]
    # rows are fixed to the milligram: 73 rows can differ by at most 73 x 0.0005 g
    assert abs(float(summary["location_g"]) - grams) <= 73 * 0.0005 + 1e-3


def test_fall_back_day_is_whole_in_local_time(closed: dict[str, object]) -> None:
    files = closed["settlement"].files  # type: ignore[attr-defined]
    rows = read_csv(files.csvs["intervals"])
    day2 = [r for r in rows if r["market_date"] == "2025-11-02"]
    assert [int(r["interval_index"]) for r in day2] == list(range(1, 101))
    one_am = [r["interval_start_local"] for r in day2
              if r["interval_start_local"].startswith("2025-11-02T01:00")]
    assert one_am == ["2025-11-02T01:00:00-05:00", "2025-11-02T01:00:00-06:00"]
    assert [r["repeated_hour"] for r in day2 if r["interval_start_local"] in one_am] == \
        ["false", "true"]
    daily = {d["market_date"]: d for d in read_csv(files.csvs["daily"])}
    assert {k: d["intervals_expected"] for k, d in daily.items()} == \
        {"2025-11-01": "96", "2025-11-02": "100", "2025-11-03": "96"}
    hours = read_csv(closed["carbon"].files.csvs["hours"])  # type: ignore[attr-defined]
    assert sum(1 for h in hours if h["market_date"] == "2025-11-02") == 25
    for kind in ("settlement", "carbon"):
        summary = read_csv(closed[kind].files.csvs["summary"])[0]  # type: ignore[attr-defined]
        assert (summary["period_start_local"], summary["period_end_local"]) == \
            ("2025-11-01T00:00:00-05:00", "2025-12-01T00:00:00-06:00")  # CDT in, CST out


@pytest.mark.parametrize(("kind", "svgs"), [("settlement", 3), ("carbon", 4)])
def test_page_is_well_formed_self_contained_with_charts(closed: dict[str, object], kind: str,
                                                        svgs: int) -> None:
    page = parse_page(closed[kind].files.html)  # type: ignore[attr-defined]
    assert page.errors == [] and page.stack == []
    assert page.tags["svg"] == svgs
    assert page.tags["path"] > svgs  # the charts have drawn series
    assert page.external == []  # no script, no stylesheet or image fetched


def test_page_traces_sources_gates_and_outputs(closed: dict[str, object]) -> None:
    c = closed["settlement"]
    text = c.files.html.read_text()  # type: ignore[attr-defined]
    for f in c.report.sources[0].files:  # type: ignore[attr-defined]
        assert f in text
    assert "part-g000000" not in text  # the stale generation was not read
    for path in c.files.csvs.values():  # type: ignore[attr-defined]
        assert path.name in text
    assert "settlement: <span class=\"pass\">PASS</span>" in text
    assert "interval_energy: <span class=\"pass\">PASS</span>" in text
    assert "2592 of 2884 intervals" in text  # the incomplete month is said, not hidden
    curt = read_csv(c.files.csvs["curtailments"])  # type: ignore[attr-defined]
    assert [(r["event_id"], r["curtailed_mwh"]) for r in curt] == [("c1", "20.0")]


def test_without_manifest_repeated_rows_count_once(tmp_path: Path,
                                                   frames: dict[str, pl.DataFrame]) -> None:
    marts = tmp_path / "marts"
    publish(marts, {"settlement": frames["settlement"]}, generation=1)
    publish(marts, {"settlement": frames["settlement"]}, generation=2)
    shutil.rmtree(marts / "_manifests")
    got = close_settlement(marts, MONTH, tmp_path / "out", gate=stub_gate)
    settlement_source = next(s for s in got.report.sources if s.table == "settlement")
    assert settlement_source.rows == 292 and "292 repeated row(s) dropped" in \
        settlement_source.note
    assert got.report.summary["net_usd"][0] == frames["settlement"]["net_usd"].sum()
