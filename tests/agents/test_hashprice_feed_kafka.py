"""The network hashprice on ``grid.hashprice.v1`` reaches the controller (issue #23).

The small site's policy hashprice is $50/PH/day: breakevens S19jPro 50 / (0.024 x 29.5) =
$70.62/MWh and S21 50 / (0.024 x 17.5) = $119.05/MWh, so a $65 price curtails nothing. A
$25 feed value halves them ($35.31, $59.52): the same price then curtails the whole fleet,
and the event's audit names the feed. No telemetry is needed: wall ticks move the clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from schemas.events import CurtailmentEvent
from schemas.grid import HashpriceSignal, PriceSignal
from schemas.site import CurtailmentPolicy
from streams.agents.sites import publish_site
from streams.settings import Settings
from tests.agents.helpers import Collector, produce, small_site, wait_for_members, worker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_controller_follows_the_hashprice_topic(
    fresh_namespace_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_namespace_settings
    site = msgspec.structs.replace(
        small_site(), policy=CurtailmentPolicy(hashprice_usd_per_ph_day=50.0)
    )
    publish_site(settings, site)
    col = Collector(settings, {"curtailment.events.v1": CurtailmentEvent})
    log = tmp_path / "worker.log"
    args = ("--site", site.site_id, "--tick", "wall", "--loglevel", "info")
    try:
        with worker(settings, *args, log=log) as proc:
            wait_for_members(settings, f"{settings.topic_namespace}.spillway-agents", 1, 90)
            now = float(int(time.time()))
            feed = HashpriceSignal(
                source="test-feed", ts_s=now - 86_400, published_s=now - 1, usd_per_ph_day=25.0
            )
            price = PriceSignal(
                market="ERCOT",
                settlement_point=site.settlement_point,
                kind="rt",
                interval_start_s=now - 600,
                interval_end_s=now - 300,
                price_usd_per_mwh=65.0,
                published_s=now,
            )
            produce(settings, [("grid.hashprice.v1", b"network", msgspec.json.encode(feed))])
            produce(settings, [("grid.prices.v1", b"LZ_WEST", msgspec.json.encode(price))])
            got = col.until(lambda g: len(g["curtailment.events.v1"]) >= 1, 60, "issued")
            assert proc.poll() is None, log.read_text()[-3000:]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{log.read_text()[-3000:]}") from None
    finally:
        col.close()
    issued = got["curtailment.events.v1"][0]
    assert (issued.kind, issued.reasons, issued.target_mining_w) == ("issued", ["economic"], 0.0)
    assert (issued.hashprice_source, issued.hashprice_usd_per_ph_day) == ("test-feed", 25.0)
    assert issued.hashprice_published_s == now - 1
    assert issued.price_usd_per_mwh == 65.0
