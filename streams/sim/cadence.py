"""When each simulated source polls: real collectors read a device every 1 to 60 s (NVML 1 s,
the ASIC collector 5 s by default, a replayed scrape 60 s), with jitter and missed polls.

Each source polls every ``period_s`` seconds from its own phase (drawn once, so that a
fleet's polls spread over the period as independent collectors' do); a due poll is lost
with probability ``missed_share``; a poll's stamp is late by up to ``jitter_s``. The draws
come from their own generator: a cadence of 1 s with no jitter or misses draws nothing and
leaves every other draw of the simulator as it was.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


class Cadence:
    def __init__(
        self,
        sources: int,
        period_s: int,
        *,
        jitter_s: float,
        missed_share: float,
        rng: np.random.Generator,
    ) -> None:
        if period_s < 1:
            raise ValueError(f"poll period must be a whole number of seconds >= 1, not {period_s}")
        if not 0.0 <= missed_share < 1.0:
            raise ValueError(f"missed_poll_share must be in [0, 1), not {missed_share}")
        if not 0.0 <= jitter_s < 1.0:
            raise ValueError(f"poll_jitter_s must be in [0, 1), not {jitter_s}")
        self.sources = sources
        self.period_s = period_s
        self.jitter_s = jitter_s
        self.missed_share = missed_share
        self.rng = rng
        self.every_second = period_s == 1 and missed_share == 0.0
        self.phase = rng.integers(0, period_s, sources) if period_s > 1 else np.zeros(sources)

    def due(self, t_s: float) -> list[bool] | None:
        """Which sources poll in the second starting at ``t_s``; None: all of them."""
        if self.every_second:
            return None
        mask = (int(t_s) - self.phase) % self.period_s == 0
        if self.missed_share > 0.0:
            mask &= self.rng.random(self.sources) >= self.missed_share
        due: list[bool] = mask.tolist()
        return due

    def stamps(self, base: F64) -> F64:
        """Poll stamps: ``base`` (second plus clock skew) late by the jitter."""
        if self.jitter_s == 0.0:
            return base
        jitter: F64 = self.rng.uniform(0.0, self.jitter_s, len(base))
        return base + jitter
