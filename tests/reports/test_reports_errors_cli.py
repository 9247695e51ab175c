"""Clear errors when nothing is published, several sites, a derived settlement when only
site power and prices are published; the CLI's help and exit codes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from schemas.site import ContractBlock, CurtailmentPolicy, SiteConfig
from streams.cli import main
from streams.reports.month_close import close_carbon, close_settlement
from tests.reports.synthetic import (
    CONTRACT_PRICE,
    END_S,
    HASHPRICE,
    SITE,
    START_S,
    marts_frames,
    price_of,
    publish,
    stub_gate,
)
from transforms.reports.errors import NothingPublished, ReportInputError
from transforms.reports.period import Period

NOV = Period.month("2025-11")


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return marts_frames()


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory, frames: dict[str, pl.DataFrame]) -> Path:
    root = tmp_path_factory.mktemp("marts")
    publish(root, {k: frames[k] for k in ("settlement", "interval_energy", "carbon_hourly")})
    return root


@pytest.mark.parametrize(("month", "close", "table"), [
    ("2025-12", close_settlement, "settlement"),
    ("2025-10", close_carbon, "carbon_hourly"),
])
def test_month_without_data_says_so(marts: Path, tmp_path: Path, month: str, close: object,
                                    table: str) -> None:
    with pytest.raises(NothingPublished) as err:
        close(marts, Period.month(month), tmp_path, gate=stub_gate)  # type: ignore[operator]
    text = str(err.value)
    assert text.startswith(f"nothing published for {month} (America/Chicago")
    assert f"in table {table!r}" in text and "nor can it be derived" in text
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_missing_marts_folder(tmp_path: Path) -> None:
    with pytest.raises(NothingPublished, match="does not exist"):
        close_settlement(tmp_path / "nope", NOV, tmp_path, gate=stub_gate)


def test_unknown_site_and_several_sites(tmp_path: Path, frames: dict[str, pl.DataFrame]) -> None:
    marts = tmp_path / "m"
    two = pl.concat([frames["settlement"],
                     frames["settlement"].with_columns(pl.lit("site-b").alias("site_id"))])
    publish(marts, {"settlement": two})
    with pytest.raises(ReportInputError, match=r"several sites \['site-a', 'site-b'\]"):
        close_settlement(marts, NOV, tmp_path / "o", gate=stub_gate)
    with pytest.raises(NothingPublished, match="nothing published for site 'site-z'"):
        close_settlement(marts, NOV, tmp_path / "o", gate=stub_gate, site_id="site-z")
    got = close_settlement(marts, NOV, tmp_path / "o", gate=stub_gate, site_id="site-b")
    assert got.report.site_id == "site-b" and got.report.intervals.height == 292


def test_settlement_derived_from_site_power_and_prices(tmp_path: Path,
                                                       frames: dict[str, pl.DataFrame]) -> None:
    """No settlement or energy mart: the report settles site power itself, with the
    published RT prices and the site file's contract; it must equal the settlement mart
    built from the same inputs."""
    ivs = frames["interval_energy"]["interval_start_s"].to_list()
    prices = pl.DataFrame({"market": "ERCOT", "settlement_point": "LZ_WEST", "kind": "rt",
                           "interval_start_s": [float(s) for s in ivs],
                           "price_usd_per_mwh": [price_of(s) for s in ivs]},
                          schema_overrides={"price_usd_per_mwh": pl.Decimal(18, 6)})
    other = prices.with_columns(pl.lit("HB_NORTH").alias("settlement_point"),
                                pl.col("price_usd_per_mwh") * 2)
    marts = tmp_path / "m"
    publish(marts, {"site_power": frames["site_power"], "grid_prices": pl.concat([prices, other])})
    site = SiteConfig(site_id=SITE, name="t", settlement_point="LZ_WEST",
                      interconnection_limit_mw=400.0,
                      contract=[ContractBlock(start_s=START_S, end_s=END_S, mw=300.0,
                                              price_usd_per_mwh=float(CONTRACT_PRICE))],
                      gpu_pools=[], asic_models=[], meters=[],
                      policy=CurtailmentPolicy(hashprice_usd_per_ph_day=float(HASHPRICE)))
    got = close_settlement(marts, NOV, tmp_path / "o", gate=stub_gate, site=site)
    s = got.report.summary
    expected = frames["settlement"]
    assert s["net_usd"][0] == expected["net_usd"].sum()
    assert s["forward_usd"][0] == Decimal(-300) * 73 * CONTRACT_PRICE
    notes = {x.table: x.note for x in got.report.sources}
    assert "LZ_WEST" in notes["settlement (derived)"]
    assert "site_power" in notes["site_power_1s"]  # published under the sink's name
    with pytest.raises(NothingPublished,
                       match=r"nor can it be derived: missing site file \(--site-file\)"):
        close_settlement(marts, NOV, tmp_path / "o", gate=stub_gate)


@pytest.mark.parametrize("argv", [["report", "--help"], ["report", "settlement", "--help"],
                                  ["report", "carbon", "--help"]])
def test_cli_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ex:
        main(argv)
    assert ex.value.code == 0
    out = capsys.readouterr().out
    assert "report" in out
    if len(argv) == 3:
        assert "--month" in out and "--site" in out and "--out" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "settlement", "--month", "2025-12"], "nothing published"),
    (["report", "carbon", "--month", "2025-12"], "nothing published"),
    (["report", "settlement", "--month", "2025-13"], "expected YYYY-MM"),
])
def test_cli_errors_exit_2_with_a_message(marts: Path, tmp_path: Path, argv: list[str],
                                          message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ex:
        main([*argv, "--marts", str(marts), "--out", str(tmp_path)])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # earlier lines: progress
    assert last.startswith(f"spillway report {argv[1]}: ") and message in last
