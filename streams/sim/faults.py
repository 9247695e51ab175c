"""Faults on demand. Clock skew and counter resets live in the model (they change what a
device reports); dropouts, duplicates and reordering happen on the way out, here."""

from __future__ import annotations

import msgspec
import numpy as np

Outgoing = tuple[str, bytes, bytes]
"""(base topic, key, value) of one message."""


class FaultConfig(msgspec.Struct, kw_only=True, frozen=True):
    drop_share: float = 0.0
    """Share of frames lost (a silent collector, a dropped UDP scrape)."""
    duplicate_share: float = 0.0
    """Share of frames sent twice (a collector retry)."""
    reorder_share: float = 0.0
    """Share of frames held back and sent after the next second's frames."""
    skew_share: float = 0.0
    """Share of sources whose clock is off by ``skew_s``."""
    skew_s: float = 5.0
    """Clock offset of a skewed source (sign drawn per source), s."""
    resets_per_hour: float = 0.0
    """Energy counter resets per source per hour (driver reload, meter register rollover)."""
    outage_topic: str = "telemetry.asic.v1"
    """Topic of the collector that loses its link (``outage_s``)."""
    outage_start_s: float = 0.0
    """Event time (UTC s) at which that collector loses its link."""
    outage_s: float = 0.0
    """How long it stays cut off, buffering, before it sends everything it buffered: a
    collector catching up. Its frames arrive late by up to this much (0: no outage)."""

    def check(self) -> None:
        for name in ("drop_share", "duplicate_share", "reorder_share", "skew_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"fault {name}={v}: expected a share 0..1")
        if self.resets_per_hour < 0:
            raise ValueError(f"fault resets_per_hour={self.resets_per_hour}: expected >= 0")
        if self.outage_s < 0:
            raise ValueError(f"fault outage_s={self.outage_s}: expected >= 0")

    @property
    def transport(self) -> bool:
        return self.drop_share > 0 or self.duplicate_share > 0 or self.reorder_share > 0


class TransportFaults:
    """Drops, duplicates and delays outgoing messages; keeps the held-back ones between steps."""

    def __init__(self, cfg: FaultConfig, seed: int) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.held: list[Outgoing] = []
        self.dropped = 0
        self.duplicated = 0
        self.reordered = 0
        self.outage_key: bytes | None = None
        """The collector cut off: the first key seen on ``outage_topic``."""
        self.buffered: list[Outgoing] = []
        self.delayed = 0

    def apply(self, msgs: list[Outgoing], t_s: float | None = None) -> list[Outgoing]:
        """This step's messages as they leave; ``t_s``: the step's event time (outages)."""
        cfg = self.cfg
        if cfg.outage_s > 0 and t_s is not None:
            msgs = self._outage(msgs, t_s)
        if not cfg.transport:
            return msgs
        n = len(msgs)
        u = self.rng.random((3, n))
        out: list[Outgoing] = []
        held: list[Outgoing] = []
        for i, m in enumerate(msgs):
            if u[0, i] < cfg.drop_share:
                self.dropped += 1
                continue
            if u[1, i] < cfg.reorder_share:
                held.append(m)
                self.reordered += 1
                continue
            out.append(m)
            if u[2, i] < cfg.duplicate_share:
                out.append(m)
                self.duplicated += 1
        # Last second's held-back frames go out after this second's: consumers see them late.
        out.extend(self.held)
        self.held = held
        return out

    def _outage(self, msgs: list[Outgoing], t_s: float) -> list[Outgoing]:
        """One collector (the first key on ``outage_topic``) buffers its frames during the
        outage and sends them all when its link is back, after that second's others."""
        cfg = self.cfg
        if self.outage_key is None:
            self.outage_key = next((k for topic, k, _ in msgs if topic == cfg.outage_topic), None)
        start, end = cfg.outage_start_s, cfg.outage_start_s + cfg.outage_s
        if start <= t_s < end:
            cut = [m for m in msgs if m[0] == cfg.outage_topic and m[1] == self.outage_key]
            self.buffered.extend(cut)
            self.delayed += len(cut)
            return [m for m in msgs if not (m[0] == cfg.outage_topic and m[1] == self.outage_key)]
        if self.buffered and t_s >= end:
            msgs = [*msgs, *self.buffered]
            self.buffered = []
        return msgs

    def flush(self) -> list[Outgoing]:
        held, self.held = [*self.held, *self.buffered], []
        self.buffered = []
        return held
