"""Month-close reports for the settlement team: per-interval settlement and hourly carbon of
one site over a local month (or year), as CSVs plus one self-contained HTML page each.

Pure builders take polars frames (``build_settlement_report``, ``build_carbon_report``);
``loader`` reads the published marts' Parquet files; ``month_close`` ties load -> derive ->
build -> write for ``spillway report`` and ``bench_year``.
"""

from __future__ import annotations

from streams.reports.carbon_report import CarbonReport, build_carbon_report
from streams.reports.common import Source
from streams.reports.errors import NothingPublished, ReportError, ReportInputError
from streams.reports.loader import LoadedTable, load_period, load_table
from streams.reports.month_close import Closed, close_carbon, close_settlement
from streams.reports.period import Period
from streams.reports.settlement_report import SettlementReport, build_settlement_report
from streams.reports.write import ReportFiles, write_carbon_report, write_settlement_report

__all__ = [
    "CarbonReport",
    "Closed",
    "LoadedTable",
    "NothingPublished",
    "Period",
    "ReportError",
    "ReportFiles",
    "ReportInputError",
    "SettlementReport",
    "Source",
    "build_carbon_report",
    "build_settlement_report",
    "close_carbon",
    "close_settlement",
    "load_period",
    "load_table",
    "write_carbon_report",
    "write_settlement_report",
]
