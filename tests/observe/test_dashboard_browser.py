"""The dashboard in headless Chromium, fed through the real broker.

Produces a site's config, two minutes of site power with a curtailment in it, prices,
carbon, surplus and alerts into a fresh namespace; publishes a small settlement mart;
loads the page; checks that it shows the figures and that the live series move when new
seconds are produced; saves test-artifacts/dashboard.png.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from streams.io.kafka import TopicProducer
from streams.observe.feed import Feed, FeedThread
from streams.observe.state import ObserveState
from streams.observe.web import DashboardServer, status_of
from streams.settings import Settings
from tests.observe.browser import chromium_driver
from tests.observe.helpers import (
    alert,
    carbon,
    curtailment,
    power,
    price,
    publish_marts,
    settlement,
    site,
    surplus,
)

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
enc = msgspec.json.Encoder()


def ai_mw(ts: int) -> float:
    return 190.0 + 25.0 * math.sin(ts / 9.0)


def mining_mw(ts: int, curtailed: tuple[int, int]) -> float:
    return 20.0 if curtailed[0] + 4 <= ts < curtailed[1] else 110.0


def produce_history(producer: TopicProducer, now: int) -> None:
    """Two minutes of a site: a curtailment from now-70 to now-30, a price spike."""
    producer.send("site.config.v1", enc.encode(site()), key=b"s1")
    interval = now - now % 900
    for i, usd in enumerate((31.5, 36.2, 44.9, 58.0, 72.3, 150.4, 412.5, 88.1)):
        producer.send("grid.prices.v1", enc.encode(price(interval - (7 - i) * 900, usd)),
                      key=b"LZ_WEST")
    hour = now - now % 3600
    for h in range(24):
        g = 380.0 - 120.0 * math.sin(math.pi * h / 24)
        producer.send("grid.carbon.v1", enc.encode(carbon(hour - (23 - h) * 3600, g)),
                      key=b"ERCOT")
    window = (now - 70, now - 30)
    for ts in range(now - 120, now):
        p = power(ts, ai_mw=ai_mw(ts), mining_mw=mining_mw(ts, window))
        producer.send("site.power.v1", enc.encode(p), key=b"s1")
    issued = float(window[0])
    producer.send("curtailment.events.v1", enc.encode(curtailment(
        "issued", issued=issued)), key=b"s1")
    producer.send("curtailment.events.v1", enc.encode(curtailment(
        "achieved", issued=issued, achieved_at_s=issued + 4.2, response_time_s=4.2,
        deadline_met=True, ts_s=issued + 4.2)), key=b"s1")
    producer.send("curtailment.events.v1", enc.encode(curtailment(
        "ended", issued=issued, ended_at_s=float(window[1]), ts_s=float(window[1]))), key=b"s1")
    producer.send("curtailment.events.v1", enc.encode(curtailment(
        "issued", event_id="c2", issued=float(now - 5), reasons=["site_limit"],
        reason_details=["AI spike: site 412 MW over its 400 MW contract"])), key=b"s1")
    producer.send("surplus.events.v1", enc.encode(surplus()), key=b"s1")
    producer.send("alerts.v1", enc.encode(alert(started=float(now - 40))), key=b"s1")
    producer.send("alerts.v1", enc.encode(alert(
        alert_id="s1/curtailment_late/c0/1", severity="warning", started=float(now - 100),
        condition="curtailment_late", subject="c0",
        message="curtailment c0 not at target 60 s after its deadline")), key=b"s1")
    producer.flush()


def publish_settlement(marts: Path, now: int) -> None:
    start = now - now % 900 - 4 * 900
    rows = [("s1", start + i * 900, f"{77.5 + i:.6f}", f"{-2950.25 + 410.1 * i:.2f}")
            for i in range(4)]
    day = time.strftime("%Y-%m-%d", time.gmtime(start))
    publish_marts(marts, now - 30, {"settlement": {day: settlement(rows)}}, gen=1)


@pytest.fixture
def dashboard(fresh_namespace_settings: Settings, tmp_path: Path
              ) -> Iterator[tuple[str, TopicProducer]]:
    settings = fresh_namespace_settings.model_copy(update={"home": tmp_path})
    producer = TopicProducer(settings)
    now = int(time.time())
    produce_history(producer, now)
    publish_settlement(settings.marts_dir, now)
    state = ObserveState()
    lock = threading.Lock()
    feed = FeedThread(Feed(settings, state, lock=lock))
    server = DashboardServer(settings, state, lock, port=0, status=status_of(feed),
                             push_every_s=0.5)
    url = server.start()
    feed.start()
    try:
        yield url, producer
    finally:
        feed.stop()
        server.stop()


def wait_for(driver: Any, script: str, expect: Any = True, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = driver.execute_script(script)
        if (expect(last) if callable(expect) else last == expect):
            return last
        time.sleep(0.2)
    pytest.fail(f"page never satisfied `{script}` (last value {last!r})")


def test_dashboard_live_in_chromium(dashboard):
    url, producer = dashboard
    driver = chromium_driver()
    try:
        driver.get(url)
        assert driver.title == "Spillway dashboard"
        # The page has loaded uPlot (vendored) and drawn the 120 seconds of history.
        assert driver.execute_script("return typeof uPlot") == "function"
        wait_for(driver, "return spillway.charts['chart-power'].data[0].length",
                 lambda n: n is not None and n >= 120)

        def text(element_id: str) -> str:
            return str(driver.find_element("id", element_id).text)

        assert text("kpi-contract") == "400.0 MW"
        assert text("kpi-limit") == "420.0 MW"
        assert text("kpi-price") == "$88.10/MWh"
        assert text("kpi-breakeven") == "$96.15/MWh"  # 50 / (0.024 x 21.667 J/TH)
        assert text("kpi-alerts") == "2"
        assert "Test site (s1)" in text("site")
        curtailments = text("curtailments")
        assert "site_limit" in curtailments and "AI spike" in curtailments
        assert "meter_silent" in text("alerts") and "curtailment_late" in text("alerts")
        assert "site.power.v1" in text("flow")
        wait_for(driver, "return spillway.marts && spillway.marts.status", "ok")
        assert "net usd" in text("marts")
        assert driver.execute_script(
            "return spillway.lastSnapshot.curtailments.timeline.length") == 2
        # Surplus and price series are drawn too.
        # 8 intervals, the last held to its end
        assert driver.execute_script("return spillway.charts['chart-price'].data[0].length") == 9
        assert driver.execute_script("return spillway.charts['chart-carbon'].data[0].length") == 24

        # Live: new seconds move the series and the figures.
        first_ai = text("kpi-ai")
        last_t = driver.execute_script(
            "const d = spillway.charts['chart-power'].data[0]; return d[d.length - 1]")
        now = int(time.time())
        for k, ts in enumerate(range(now, now + 3)):
            producer.send("site.power.v1", enc.encode(power(ts, ai_mw=260.0 + k)), key=b"s1")
        producer.flush()
        wait_for(driver, "return document.getElementById('kpi-ai').textContent", "262.0 MW")
        assert first_ai != "262.0 MW"
        new_last = wait_for(
            driver, "const d = spillway.charts['chart-power'].data[0]; return d[d.length - 1]",
            lambda t: t is not None and t > last_t)
        assert new_last == now + 2
        assert driver.execute_script(
            "const d = spillway.charts['chart-power'].data[1]; return d[d.length - 1]") == 262.0
        time.sleep(1.0)  # let the charts repaint before the picture
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        assert (ARTIFACTS / "dashboard.png").stat().st_size > 20_000
    finally:
        driver.quit()
