"""The latest ``SiteConfig`` of every site, read by every worker from the compacted
``site.config.v1`` topic (a "global table": each worker reads the whole topic, outside the
consumer group, because every telemetry partition may carry frames of any site).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infra.topics import full_name
from schemas.registry import CONTRACTS
from schemas.site import SiteConfig
from schemas.validation import Limits, Rejection
from streams.decisions.fleet import Fleet, fleet_roster
from streams.decisions.power import SiteIndex, index_site
from streams.io.kafka import TopicProducer, make_consumer
from streams.settings import Settings

log = logging.getLogger(__name__)

SITE_TOPIC = "site.config.v1"


@dataclass(frozen=True)
class SiteEntry:
    config: SiteConfig
    index: SiteIndex
    fleet: Fleet


class SiteDirectory:
    """Site configs by id; ``poll()`` picks up new versions (call it often, it never blocks)."""

    def __init__(self, settings: Settings, group_hint: str) -> None:
        self.settings = settings
        self.topic = full_name(SITE_TOPIC, settings.topic_namespace)
        self.sites: dict[str, SiteEntry] = {}
        self.indexes: dict[str, SiteIndex] = {}
        self.version = 0
        """Bumped on every change, so that callers can rebuild what they derive."""
        self._consumer: Consumer | None = None
        self._group_hint = group_hint

    def add(self, config: SiteConfig) -> None:
        """Use ``config`` now (it is also on the topic, or about to be)."""
        old = self.sites.get(config.site_id)
        if old is not None and old.config == config:
            return
        entry = SiteEntry(config=config, index=index_site(config), fleet=fleet_roster(config))
        self.sites[config.site_id] = entry
        self.indexes[config.site_id] = entry.index
        self.version += 1

    def remove(self, site_id: str) -> None:
        if self.sites.pop(site_id, None) is not None:
            self.indexes.pop(site_id, None)
            self.version += 1

    def _open(self) -> Consumer:
        if self._consumer is None:
            # No subscribe(): assign() reads the partition without joining any group.
            c = make_consumer(
                self.settings, f"{self._group_hint}-sites", **{"enable.auto.commit": False}
            )
            c.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
            self._consumer = c
        return self._consumer

    def load(self, timeout_s: float = 30.0) -> int:
        """Read the topic to its current end; returns the number of sites known."""
        c = self._open()
        low, high = c.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        position = low
        while position < high:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"site directory: read {position - low} of {high - low} messages of "
                    f"{self.topic} in {timeout_s:.0f} s; is the broker overloaded?"
                )
            for msg in c.consume(500, timeout=0.5):
                if msg.error() is not None:
                    continue
                self._apply(msg.key(), msg.value())
                position = (msg.offset() or 0) + 1
        return len(self.sites)

    def poll(self) -> int:
        """Apply whatever arrived since the last call; returns the number of messages."""
        n = 0
        for msg in self._open().consume(500, timeout=0):
            if msg.error() is None:
                self._apply(msg.key(), msg.value())
                n += 1
        return n

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key is not None:
                self.remove(key.decode(errors="replace"))
            return
        decoded = CONTRACTS[SITE_TOPIC].decode(value, Limits(now_s=time.time()))
        if isinstance(decoded, Rejection):
            log.error("site directory: ignoring bad message on %s: %s", self.topic, decoded.reason)
            return
        self.add(decoded)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def publish_site(settings: Settings, config: SiteConfig) -> None:
    """Put ``config`` on the compacted site topic, keyed by site id, and wait for the ack."""
    producer = TopicProducer(settings)
    producer.send(SITE_TOPIC, msgspec.json.encode(config), key=config.site_id.encode())
    producer.flush(30.0)


def resolve_site_arg(arg: str) -> SiteConfig | str:
    """``--site``: a site TOML file (loaded) or a site id (looked up on the topic later)."""
    if arg.endswith(".toml") or Path(arg).is_file():
        from streams.site_file import load_site

        return load_site(arg)
    return arg
