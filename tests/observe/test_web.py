"""The dashboard's HTTP side without Kafka: the state is filled by hand."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.observe.state import ObserveState, fold
from streams.observe.web import STATIC_DIR, DashboardServer
from streams.settings import Settings
from tests.observe.helpers import T0, alert, power, site


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[DashboardServer, ObserveState, threading.Lock]]:
    state = ObserveState()
    lock = threading.Lock()
    for m in (site(), power(T0), alert()):
        fold(state, "t", m, T0)
    server = DashboardServer(Settings(home=tmp_path), state, lock, port=0,
                             status=lambda: None, push_every_s=0.1)
    server.start()
    yield server, state, lock
    server.stop()


def get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.headers.get("Content-Type", ""), resp.read()


def test_binds_loopback_only(served):
    server, _, _ = served
    assert server.url.startswith("http://127.0.0.1:")


def test_page_and_vendored_assets(served):
    server, _, _ = served
    ctype, body = get(server.url)
    assert ctype.startswith("text/html")
    page = body.decode()
    for src in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert not src.startswith(("http:", "https:", "//")), f"external asset {src}"
        get(server.url + src)  # every asset the page names is served
    assert "uPlot.iife.min.js" in page


def test_vendored_chart_library_has_its_licence():
    licence = (STATIC_DIR / "vendor" / "uplot" / "LICENSE").read_text()
    assert "MIT License" in licence


def test_state_endpoint_returns_the_snapshot(served):
    server, _, _ = served
    ctype, body = get(server.url + "api/state")
    snap = json.loads(body)
    assert ctype.startswith("application/json")
    assert snap["site_id"] == "s1"
    assert snap["latest_power"]["total_w"] == 310e6
    assert snap["alerts"]["firing"][0]["subject"] == "poi"
    assert snap["feed_error"] is None


def test_events_stream_pushes_new_state(served):
    server, state, lock = served
    with urllib.request.urlopen(server.url + "api/events", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        first = _next_event(resp)
        assert first["latest_power"]["ai_w"] == 190e6
        with lock:
            fold(state, "t", power(T0 + 1, ai_mw=250.0), T0 + 1)
        for _ in range(50):
            if _next_event(resp)["latest_power"]["ai_w"] == 250e6:
                break
        else:
            pytest.fail("the event stream never carried the new site power")


def _next_event(resp: Any) -> dict[str, Any]:
    while True:
        line = resp.readline()
        if line.startswith(b"data: "):
            event: dict[str, Any] = json.loads(line[6:])
            return event


def test_metrics_and_health(served):
    server, _, _ = served
    ctype, body = get(server.url + "metrics")
    assert ctype.startswith("text/plain")
    assert b"spillway_consumer_lag_messages" in body
    assert get(server.url + "healthz")[1] == b"ok"


def test_marts_endpoint_with_nothing_published(served):
    server, _, _ = served
    _, body = get(server.url + "api/marts")
    view = json.loads(body)
    assert view["status"] == "none"
    assert "nothing published yet" in view["message"]


def test_port_in_use_is_a_clear_error(served, tmp_path):
    server, state, lock = served
    other = DashboardServer(Settings(home=tmp_path), state, lock, port=server.port or 0)
    with pytest.raises(OSError, match=f"127.0.0.1:{server.port}"):
        other.start()
