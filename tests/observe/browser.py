"""Headless Chromium for the dashboard test: Debian's ``chromium`` and ``chromium-driver``
packages driven by Selenium, with no download at run time (the machines are offline).

A missing browser, driver or Selenium FAILS the test with the install command: the browser
test must not pass silently on a machine that cannot run it.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)
INSTALL = ("apt-get install -y chromium chromium-driver (Debian packages) and "
           ".venv/bin/pip install selenium")


def _find(env: str, names: tuple[str, ...], extra: tuple[str, ...]) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return next((p for p in extra if os.access(p, os.X_OK)), None)


def chromium_driver(width: int = 1400, height: int = 1700) -> Any:
    """A headless Chromium WebDriver, or ``pytest.fail`` saying what to install."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed: {INSTALL}", pytrace=False)
    browser = _find("SPILLWAY_CHROMIUM", BROWSERS, ("/usr/lib/chromium/chromium",))
    driver = _find("SPILLWAY_CHROMEDRIVER", DRIVERS, ("/usr/lib/chromium/chromedriver",))
    if browser is None or driver is None:
        pytest.fail(f"headless browser missing (chromium: {browser}, chromedriver: {driver}): "
                    f"{INSTALL}; or set SPILLWAY_CHROMIUM / SPILLWAY_CHROMEDRIVER",
                    pytrace=False)
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", f"--window-size={width},{height}",
                "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    try:
        return webdriver.Chrome(options=opts, service=Service(executable_path=driver))
    except Exception as exc:  # noqa: BLE001 - any start failure is a failed test, explained
        pytest.fail(f"headless Chromium did not start ({browser}, {driver}): "
                    f"{type(exc).__name__}: {exc}", pytrace=False)
