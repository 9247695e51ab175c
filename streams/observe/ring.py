"""Bounded containers for the observer's state: memory stays fixed however long it runs.

- ``TimeRing``: rows keyed by an increasing time, at most ``max_rows`` and at most
  ``span_s`` seconds back from the newest row.
- ``KeyedWindow``: latest value per key (interval or hour start), the ``max_keys`` newest
  keys kept; a restated key replaces its value.
- ``RateMeter``: events per second over a sliding window of whole seconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence


class TimeRing:
    """Rows ``(t, *values)`` in time order; a row for the newest ``t`` again replaces it.

    A row older than the newest is dropped and counted in ``late``: the observer shows the
    stream as it is now, it does not rewrite history (the marts do that).
    """

    def __init__(self, columns: Sequence[str], *, max_rows: int, span_s: float) -> None:
        if max_rows < 1:
            raise ValueError(f"TimeRing max_rows must be >= 1, got {max_rows}")
        if span_s <= 0:
            raise ValueError(f"TimeRing span_s must be > 0, got {span_s}")
        self.columns = tuple(columns)
        self.span_s = span_s
        self._rows: deque[tuple[float, tuple[float | None, ...]]] = deque(maxlen=max_rows)
        self.late = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[tuple[float, tuple[float | None, ...]]]:
        return iter(self._rows)

    @property
    def last_t(self) -> float | None:
        return self._rows[-1][0] if self._rows else None

    def append(self, t: float, values: Sequence[float | None]) -> bool:
        """Add a row; False when it was older than the newest row and so dropped."""
        if len(values) != len(self.columns):
            raise ValueError(
                f"TimeRing row has {len(values)} values, expected {len(self.columns)} "
                f"({', '.join(self.columns)})"
            )
        row = (t, tuple(values))
        last = self.last_t
        if last is not None and t < last:
            self.late += 1
            return False
        if last is not None and t == last:
            self._rows[-1] = row
        else:
            self._rows.append(row)
        while self._rows and self._rows[0][0] <= t - self.span_s:
            self._rows.popleft()
        return True

    def column_arrays(self) -> dict[str, list[float | None]]:
        """``{"t": [...], column: [...]}``: the layout chart libraries take."""
        out: dict[str, list[float | None]] = {"t": [r[0] for r in self._rows]}
        for i, name in enumerate(self.columns):
            out[name] = [r[1][i] for r in self._rows]
        return out


class KeyedWindow:
    """Latest value per numeric key, keeping the ``max_keys`` largest keys."""

    def __init__(self, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError(f"KeyedWindow max_keys must be >= 1, got {max_keys}")
        self.max_keys = max_keys
        self._values: dict[float, float] = {}

    def __len__(self) -> int:
        return len(self._values)

    def put(self, key: float, value: float) -> None:
        self._values[key] = value
        if len(self._values) > self.max_keys:
            # One key over the bound at a time, so dropping the smallest is enough.
            del self._values[min(self._values)]

    def items(self) -> list[tuple[float, float]]:
        return sorted(self._values.items())

    def latest(self) -> tuple[float, float] | None:
        if not self._values:
            return None
        key = max(self._values)
        return key, self._values[key]

    def at(self, t: float) -> float | None:
        """Value of the newest key at or before ``t`` (the interval or hour ``t`` is in)."""
        keys = [k for k in self._values if k <= t]
        return self._values[max(keys)] if keys else None


class RateMeter:
    """Counts per whole second; ``rate`` is the mean over the last ``window_s`` seconds.

    Until the meter has seen ``window_s`` seconds it divides by the seconds it has seen
    (at least one), so a fresh meter does not under-report.
    """

    def __init__(self, window_s: int = 10) -> None:
        if window_s < 1:
            raise ValueError(f"RateMeter window_s must be >= 1, got {window_s}")
        self.window_s = window_s
        self._buckets: deque[list[int]] = deque()
        self._first_s: int | None = None
        self.total = 0

    def add(self, now_s: float, n: int = 1) -> None:
        sec = int(now_s // 1)
        if self._first_s is None:
            self._first_s = sec
        if self._buckets and self._buckets[-1][0] == sec:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([sec, n])
        self.total += n
        self._trim(sec)

    def _trim(self, sec: int) -> None:
        while self._buckets and self._buckets[0][0] <= sec - self.window_s:
            self._buckets.popleft()

    def rate(self, now_s: float) -> float:
        """Events per second over the window that ends with the current second."""
        if self._first_s is None:
            return 0.0
        sec = int(now_s // 1)
        self._trim(sec)
        count = sum(n for s, n in self._buckets if s <= sec)
        seen = min(self.window_s, max(1, sec - self._first_s + 1))
        return count / seen
