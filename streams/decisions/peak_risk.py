"""The 4CP risk windows the curtailment controller acts on.

ERCOT's monthly peaks are known only after the month, so a site curtails in windows drawn
from a forecast: the site file's ``four_cp_risk_file`` (a peak-probability file or ERCOT's
load forecast) turned into windows by ``transforms.four_cp.risk_windows`` when the site
file is loaded, so they travel with the config on ``site.config.v1`` and the controller
stays pure. Without a file the fixed ``policy.peak_windows`` remain (logged): a list
written by hand cannot follow the forecast. Reload the site file as the forecast updates.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec

from schemas.site import PeakWindow, SiteConfig
from streams.errors import TerminalError

log = logging.getLogger(__name__)


class RiskFileError(TerminalError, ValueError):
    """The risk file is unreadable or malformed: the site file must be fixed."""


def four_cp_windows(site: SiteConfig) -> list[PeakWindow]:
    """The windows of the ``4cp`` trigger: the forecast's where a risk file is named."""
    if site.four_cp_risk_file is not None:
        return site.four_cp_risk_windows
    return site.policy.peak_windows


def with_risk_windows(site: SiteConfig, base_dir: Path) -> SiteConfig:
    """``site`` with ``four_cp_risk_windows`` derived from its risk file (a relative path
    is taken from ``base_dir``, the site file's folder); raises ``RiskFileError``."""
    if site.four_cp_risk_file is None:
        log.info(
            "%s: no four_cp_risk_file: 4CP windows are the fixed policy.peak_windows (%d)",
            site.site_id,
            len(site.policy.peak_windows),
        )
        return site
    # polars only for a site that names a file: loading a site file stays light
    from transforms.four_cp import FourCpInputError, read_risk_file, risk_windows

    path = base_dir / site.four_cp_risk_file
    try:
        frame = risk_windows(
            read_risk_file(path),
            site.four_cp_method,
            threshold=site.four_cp_risk_threshold,
            margin_fraction=site.four_cp_forecast_margin_fraction,
            tz=site.timezone,
        )
    except FourCpInputError as exc:
        raise RiskFileError(str(exc)) from exc
    windows = [PeakWindow(start_s=float(s), end_s=float(e)) for s, e in frame.iter_rows()]
    log.info(
        "%s: %d 4CP risk window(s) from %s (%s, threshold %g, margin %g)",
        site.site_id,
        len(windows),
        path,
        site.four_cp_method,
        site.four_cp_risk_threshold,
        site.four_cp_forecast_margin_fraction,
    )
    return msgspec.structs.replace(site, four_cp_risk_windows=windows)
