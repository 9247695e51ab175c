"""Deduplicated alerts: one per condition and subject, firing then resolved."""

from __future__ import annotations

import msgspec
import pytest

from schemas.events import Alert
from schemas.site import SiteConfig
from streams.decisions.alerts import AlertConfig, AlertState, QualityFinding, alerts_step
from streams.decisions.power import Gap, LateReadings, Reconciliation

from .conftest import T0
from .helpers import asics, power


def summary(alerts: list[Alert]) -> list[tuple[str, str, str, str]]:
    return [(a.condition, a.subject, a.severity, a.state) for a in alerts]


def step(site: SiteConfig, state: AlertState | None = None, now: float = T0, **kw: object):
    return alerts_step(state or AlertState(site_id="s1"), site, now_s=now, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("meter", "severity"),
    [("m-ai", "warning"), ("m-poi", "critical")],
)
def test_meter_silent_fires_once_and_resolves(site: SiteConfig, meter: str, severity: str) -> None:
    silent = [power(T0 + s, flags=[f"meter_missing:{meter}"]) for s in range(7)]
    state, alerts = step(site, powers=silent[:4])
    assert alerts == []  # 4 s: not yet
    state, alerts = step(site, state, powers=silent[4:])
    assert summary(alerts) == [("meter_silent", meter, severity, "firing")]
    assert alerts[0].started_at_s == T0
    assert alerts[0].alert_id == f"s1/meter_silent/{meter}/{T0}"
    state, alerts = step(site, state, powers=[power(T0 + 7)])
    assert summary(alerts) == [("meter_silent", meter, severity, "resolved")]
    assert (alerts[0].alert_id, alerts[0].ended_at_s) == (f"s1/meter_silent/{meter}/{T0}", T0 + 7)


@pytest.mark.parametrize(
    ("pattern", "states"),
    [
        ("bbb", ["firing"]),
        ("bbbg", ["firing"]),
        ("bbbgg", ["firing", "resolved"]),
        ("bbbgbgg", ["firing", "resolved"]),  # the bad second restarts the clear count
        ("bbgbb", []),  # never three in a row
        ("bbbbbbbb", ["firing"]),  # deduplicated while firing
    ],
)
def test_device_meter_mismatch_needs_persistence(
    site: SiteConfig, pattern: str, states: list[str]
) -> None:
    recs = [
        Reconciliation(
            site_id="s1",
            ts_s=T0 + i,
            use="mining",
            meter_w=70e3,
            device_w=60e3 if c == "b" else 69e3,
            estimated_w=60e3,
            difference_fraction=10 / 70 if c == "b" else 1 / 70,
            within_tolerance=c == "g",
        )
        for i, c in enumerate(pattern)
    ]
    cfg = AlertConfig(mismatch_confirm_s=3, mismatch_clear_s=2)
    _, alerts = step(site, reconciliations=recs, config=cfg)
    assert [a.state for a in alerts] == states
    assert all(a.condition == "device_meter_mismatch" and a.subject == "mining" for a in alerts)
    if alerts:
        assert alerts[0].context["device_w"] == 60e3
        assert alerts[0].started_at_s == T0


@pytest.mark.parametrize(
    ("temps", "states"),
    [
        ([[70.0, 90.0]], [("m1", "firing")]),
        ([[70.0, 90.0], [70.0, 95.0]], [("m1", "firing")]),
        ([[70.0, 90.0], [70.0, 82.0]], [("m1", "firing")]),  # not yet cool enough
        ([[70.0, 90.0], [70.0, 80.0]], [("m1", "firing"), ("m1", "resolved")]),
        ([[85.0, None]], []),  # at the limit, and no reading
    ],
)
def test_miner_over_temperature(
    site: SiteConfig, temps: list[list[float | None]], states: list[tuple[str, str]]
) -> None:
    frames = [
        asics(T0 + i, ["S21", "S21"], [200.0, 200.0], [None, None], seq=i, temps=t)
        for i, t in enumerate(temps)
    ]
    _, alerts = step(site, asic_frames=frames)
    assert [(a.subject, a.state) for a in alerts] == states


@pytest.mark.parametrize(
    ("scrapes", "states"),
    [
        ([159.9, 159.9, 159.9], ["firing"]),  # below 80% of 200 TH/s three times
        ([159.9, 159.9, 160.0], []),
        ([159.9, 159.9, 159.9, 160.0], ["firing", "resolved"]),
        ([0.0, 0.0, 0.0], []),  # sleeping: not hashing, no alert
    ],
)
def test_miner_underhashing(site: SiteConfig, scrapes: list[float], states: list[str]) -> None:
    sleeping = scrapes[0] == 0.0
    frames = [
        asics(T0 + i, ["S21"], [h], [None], seq=i, states=["sleeping" if sleeping else "hashing"])
        for i, h in enumerate(scrapes)
    ]
    _, alerts = step(site, asic_frames=frames)
    assert [a.state for a in alerts] == states
    assert all(a.condition == "miner_underhashing" for a in alerts)


def test_late_data_fires_and_resolves_after_quiet(site: SiteConfig) -> None:
    late = [
        LateReadings(site_id="s1", ts_s=T0 - 9, source_partition="t:0", readings=4, newest_s=T0)
    ]
    state, alerts = step(site, late=late)
    assert summary(alerts) == [("late_data", "readings", "warning", "firing")]
    assert alerts[0].context["readings"] == 4
    state, alerts = step(site, state, now=T0 + 30, late=late)
    assert alerts == []
    state, alerts = step(site, state, now=T0 + 89)
    assert alerts == []
    state, alerts = step(site, state, now=T0 + 90)
    assert summary(alerts) == [("late_data", "readings", "warning", "resolved")]


@pytest.mark.parametrize(("length", "fires"), [(4, False), (5, True)])
def test_power_gap_is_data_quality(site: SiteConfig, length: int, fires: bool) -> None:
    gap = Gap(site_id="s1", start_s=T0, end_s=T0 + length)
    _, alerts = step(site, gaps=[gap], powers=[power(T0 + length)])
    expected = [("data_quality", "power_gap", "warning", s) for s in ("firing", "resolved")]
    assert summary(alerts) == (expected if fires else [])


def test_quality_findings(site: SiteConfig) -> None:
    bad = QualityFinding(
        site_id="s1",
        subject="mart:interval_energy",
        ts_s=T0,
        ok=False,
        message="nulls",
        severity="critical",
    )
    state, alerts = step(site, quality=[bad, bad])
    assert summary(alerts) == [("data_quality", "mart:interval_energy", "critical", "firing")]
    good = msgspec.structs.replace(bad, ok=True, ts_s=T0 + 60, message="clean")
    _, alerts = step(site, state, quality=[good])
    assert [(a.state, a.ended_at_s) for a in alerts] == [("resolved", T0 + 60)]


def test_site_over_limit(site: SiteConfig) -> None:
    # POI 160 kW: over the 150 kW interconnection and the 120 kW contract.
    over = [power(T0 + s, poi=160e3) for s in range(3)]
    state, alerts = step(site, powers=over[:2])
    assert alerts == []
    state, alerts = step(site, state, powers=over[2:])
    assert summary(alerts) == [
        ("site_over_limit", "interconnection", "critical", "firing"),
        # Above contract is buying at RT, an economic choice: information, not a warning.
        ("site_over_limit", "contract", "info", "firing"),
    ]
    state, alerts = step(site, state, powers=[power(T0 + 3, poi=130e3)])
    assert summary(alerts) == [("site_over_limit", "interconnection", "critical", "resolved")]


def test_curtailment_alerts_resolve_when_reached(site: SiteConfig) -> None:
    from schemas.events import CurtailmentEvent

    ev = CurtailmentEvent(
        event_id="s1/curtailment/1",
        site_id="s1",
        kind="updated",
        reasons=["grid"],
        reason_details=[],
        issued_at_s=T0,
        target_mining_w=0.0,
        baseline_mining_w=60e3,
        deadline_s=T0 + 60,
        deadline_met=False,
        ts_s=T0 + 61,
    )
    state, alerts = step(site, now=T0 + 61, curtailments=[ev])
    assert summary(alerts) == [("curtailment_late", ev.event_id, "warning", "firing")]
    reached = msgspec.structs.replace(ev, kind="achieved", achieved_at_s=T0 + 70, ts_s=T0 + 70)
    state, alerts = step(site, state, now=T0 + 70, curtailments=[reached])
    assert summary(alerts) == [("curtailment_late", ev.event_id, "warning", "resolved")]
    # Never fails afterwards: it was reached.
    _, alerts = step(site, state, now=T0 + 1000)
    assert alerts == []


def test_state_round_trip(site: SiteConfig) -> None:
    state, _ = step(site, powers=[power(T0 + s, flags=["meter_missing:m-ai"]) for s in range(6)])
    restored = msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=AlertState)
    assert restored == state
    nxt = [power(T0 + 6)]
    assert step(site, state, powers=nxt)[1] == step(site, restored, powers=nxt)[1]


def test_wrong_site_is_refused(site: SiteConfig) -> None:
    with pytest.raises(ValueError, match="'s9'"):
        alerts_step(AlertState(site_id="s9"), site, now_s=0.0)
