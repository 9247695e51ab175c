"""Every documented output table of ``transforms``, for the docs generator.

``COLUMNS[table][column]`` is a one-line description with the unit. Table names match the
``run_gate`` mart names where a gate exists (``interval_energy``, ``settlement``,
``carbon_hourly``).
"""

from __future__ import annotations

from transforms import calendar, carbon, energy, settlement, sources


def _merge(*parts: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for part in parts:
        clash = set(out) & set(part)
        if clash:
            raise ValueError(f"table documented twice: {sorted(clash)}")
        out.update(part)
    return out


COLUMNS: dict[str, dict[str, str]] = _merge(
    calendar.COLUMNS, sources.COLUMNS, energy.COLUMNS, settlement.COLUMNS, carbon.COLUMNS)
