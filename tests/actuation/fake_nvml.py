"""A fake NVML module: the pynvml functions the GPU cap agent calls, over a few H100-like
cards whose drawn power follows a lowered limit (NVML values in mW, like the real one)."""

from __future__ import annotations

from dataclasses import dataclass, field


class NVMLError(Exception):
    pass


@dataclass
class Card:
    default_mw: int = 700_000
    min_mw: int = 200_000
    max_mw: int = 700_000
    limit_mw: int = 700_000
    load_mw: int = 650_000
    """What the job would draw uncapped."""


@dataclass
class FakeNvml:
    cards: list[Card] = field(default_factory=list)
    sets: list[tuple[int, int]] = field(default_factory=list)

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802 - pynvml's names
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        return i

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h: int) -> tuple[int, int]:  # noqa: N802
        return self.cards[h].min_mw, self.cards[h].max_mw

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: int) -> int:  # noqa: N802
        return self.cards[h].default_mw

    def nvmlDeviceGetPowerManagementLimit(self, h: int) -> int:  # noqa: N802
        return self.cards[h].limit_mw

    def nvmlDeviceSetPowerManagementLimit(self, h: int, mw: int) -> None:  # noqa: N802
        c = self.cards[h]
        if not c.min_mw <= mw <= c.max_mw:
            raise NVMLError(f"invalid argument: {mw} mW outside {c.min_mw}..{c.max_mw}")
        c.limit_mw = mw
        self.sets.append((h, mw))

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:  # noqa: N802
        c = self.cards[h]
        return min(c.load_mw, c.limit_mw)
