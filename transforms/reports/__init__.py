"""The month-close reports' pure builders: polars frames in, report tables out, with no file,
Kafka or DuckDB access (``streams.reports`` reads the marts and writes CSV and HTML).

- ``period``: the local month (or year) and its settlement intervals and carbon hours;
- ``derive``: marts a report needs but that were not published, from those that were;
- ``settlement_report`` / ``carbon_report``: the report tables with exact Decimal totals;
- ``common``: site choice, gates (passed in as a function), local time text, exact sums;
- ``errors``: the report errors (none transient).
"""

from __future__ import annotations

from transforms.reports.carbon_report import CarbonReport, build_carbon_report
from transforms.reports.common import Gate, Source
from transforms.reports.errors import NothingPublished, ReportError, ReportInputError
from transforms.reports.period import Period
from transforms.reports.settlement_report import SettlementReport, build_settlement_report

__all__ = [
    "CarbonReport",
    "Gate",
    "NothingPublished",
    "Period",
    "ReportError",
    "ReportInputError",
    "SettlementReport",
    "Source",
    "build_carbon_report",
    "build_settlement_report",
]
