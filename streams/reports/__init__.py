"""Month-close reports for the settlement team: per-interval settlement and hourly carbon of
one site over a local month (or year), as CSVs plus one self-contained HTML page each.

This package is the I/O around the pure builders of ``transforms.reports``
(``build_settlement_report``, ``build_carbon_report``, the period, the derivations):
``loader`` reads the published marts' Parquet files; ``render``/``html``/``svg`` draw the
HTML and ``write`` writes the CSVs and pages; ``month_close`` ties load -> derive -> build ->
write for ``spillway report`` and ``bench_year``; ``quiet`` holds back a gate's terminal noise.
"""

from __future__ import annotations

from streams.reports.loader import LoadedTable, load_period, load_table
from streams.reports.month_close import Closed, close_carbon, close_settlement
from streams.reports.write import ReportFiles, write_carbon_report, write_settlement_report

__all__ = [
    "Closed",
    "LoadedTable",
    "ReportFiles",
    "close_carbon",
    "close_settlement",
    "load_period",
    "load_table",
    "write_carbon_report",
    "write_settlement_report",
]
