"""The dashboard shows one data_quality alert for a held partition, however many times the
sink republishes the held day, and none once it publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.marts.publish import publish
from streams.observe.state import ObserveState, fold
from tests.marts.helpers import site_second
from tests.marts.test_publish import FakeGate
from tests.marts.test_settlement_mart import DAY, Sink
from tests.marts.test_settlement_mart import sink as sink  # noqa: F401 - the fixture


def test_a_held_day_is_one_firing_alert_until_it_publishes(sink: Sink, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    state = ObserveState()
    sent: list[Any] = []
    sink.write([("site.power.v1", site_second("s", DAY + i)) for i in range(1801)])
    for k in range(10):  # a publication every 30 s while the day is held
        sink.write([("site.power.v1", site_second("s", DAY + 1801 + k))])
        publish(sink.con, marts, gate=FakeGate(ok=False), alert=sent.append,
                now_s=DAY + 2000 + 30 * k)
    for a in sent:
        fold(state, "alerts.v1", a, DAY + 2400)
    assert [a.subject for a in state.firing.values()] == ["interval_energy:2026-01-01"]
    sink.write([("site.power.v1", site_second("s", DAY + 1900))])
    publish(sink.con, marts, gate=FakeGate(), alert=sent.append, now_s=DAY + 2500)
    for a in sent[-1:]:
        fold(state, "alerts.v1", a, DAY + 2500)
    assert state.firing == {}
    assert (sent[-1].state, sent[-1].started_at_s, sent[-1].ended_at_s) == (
        "resolved", DAY + 2000, DAY + 2500)
