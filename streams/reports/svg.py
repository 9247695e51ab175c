"""Inline SVG charts drawn in Python: reports must open offline, with no JS or CSS fetched.

Each helper takes plain numbers and returns one ``<svg>`` element as text (well-formed XML,
every label escaped). Values are drawn, never computed here: the figures of record are in the
report's tables, so floats are fine for pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
"""Series colours, in order (matplotlib's tab10, readable on white and in greyscale)."""


@dataclass(frozen=True)
class Frame:
    """Plot geometry: outer size and the margins around the plot area, px."""

    width: int = 900
    height: int = 280
    left: int = 70
    right: int = 190
    top: int = 30
    bottom: int = 40

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom


Band = tuple[float, float, str]
"""A shaded span on the x axis: (x0, x1, label), e.g. a curtailment event."""


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 5 x 10^k steps) covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"nice_ticks: bounds must be finite, got {lo}, {hi}")
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    if ticks[-1] < hi:
        ticks.append(round(first + k * step, 12))
    return ticks


def fmt_num(v: float) -> str:
    """Short axis label: 1 200 -> 1.2k, 3 500 000 -> 3.5M."""
    a = abs(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


class _Scale:
    def __init__(self, d0: float, d1: float, r0: float, r1: float) -> None:
        self.d0, self.d1, self.r0, self.r1 = d0, d1 if d1 != d0 else d0 + 1.0, r0, r1

    def __call__(self, v: float) -> float:
        return self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)


def _open(f: Frame, title: str) -> list[str]:
    t = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{f.width}" height="{f.height}" '
        f'viewBox="0 0 {f.width} {f.height}" role="img" aria-label="{t}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{t}</title>",
        f'<text x="{f.left}" y="16" font-size="13" font-weight="bold">{t}</text>',
    ]


def _axes(
    f: Frame,
    xs: _Scale,
    ys: _Scale,
    yticks: list[float],
    y_label: str,
    x_ticks: Sequence[tuple[float, str]],
) -> list[str]:
    out = []
    x0, x1 = f.left, f.left + f.plot_w
    for v in yticks:
        y = ys(v)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt_num(v))}</text>'
        )
    for v, label in x_ticks:
        x = xs(v)
        if x0 - 0.5 <= x <= x1 + 0.5:
            yb = f.top + f.plot_h
            out.append(f'<line x1="{x:.1f}" y1="{yb}" x2="{x:.1f}" y2="{yb + 4}" stroke="#555"/>')
            out.append(
                f'<text x="{x:.1f}" y="{yb + 16}" text-anchor="middle">{escape(label)}</text>'
            )
    out.append(
        f'<rect x="{x0}" y="{f.top}" width="{f.plot_w}" height="{f.plot_h}" '
        'fill="none" stroke="#555"/>'
    )
    cy = f.top + f.plot_h / 2
    out.append(
        f'<text x="14" y="{cy:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {cy:.1f})">{escape(y_label)}</text>'
    )
    return out


def _legend(f: Frame, names: Sequence[str], colours: Sequence[str]) -> list[str]:
    out = []
    x = f.left + f.plot_w + 12
    for k, (name, colour) in enumerate(zip(names, colours, strict=True)):
        y = f.top + 6 + 16 * k
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{y + 9}">{escape(name)}</text>')
    return out


def _bands(f: Frame, xs: _Scale, bands: Sequence[Band]) -> list[str]:
    out = []
    for b0, b1, label in bands:
        x0 = max(xs(b0), f.left)
        x1 = min(xs(b1), f.left + f.plot_w)
        if x1 > x0:
            out.append(
                f'<rect x="{x0:.1f}" y="{f.top}" width="{max(x1 - x0, 0.8):.1f}" '
                f'height="{f.plot_h}" fill="#d62728" fill-opacity="0.12">'
                f"<title>{escape(label)}</title></rect>"
            )
    return out


def _check(x: Sequence[float], series: Mapping[str, Sequence[float | None]], what: str) -> None:
    if not series:
        raise ValueError(f"{what}: no series to draw")
    for name, ys in series.items():
        if len(ys) != len(x):
            raise ValueError(f"{what}: series {name!r} has {len(ys)} points for {len(x)} x values")


def _bounds(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    return min(0.0, min(finite)), max(0.0, max(finite))


def _x_scale(f: Frame, x: Sequence[float], x_range: tuple[float, float] | None) -> _Scale:
    lo, hi = x_range if x_range is not None else (min(x, default=0.0), max(x, default=1.0))
    return _Scale(lo, hi, f.left, f.left + f.plot_w)


def _runs(x: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """Consecutive (x, y) stretches without a missing (None or non-finite) value."""
    runs: list[list[tuple[float, float]]] = [[]]
    for xv, yv in zip(x, ys, strict=True):
        if yv is None or not math.isfinite(yv):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((xv, yv))
    return [r for r in runs if r]


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if k == 0 else 'L'}{x:.1f},{y:.1f}" for k, (x, y) in enumerate(points))


def line_chart(
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    y_label: str,
    x_ticks: Sequence[tuple[float, str]] = (),
    bands: Sequence[Band] = (),
    frame: Frame | None = None,
    x_range: tuple[float, float] | None = None,
) -> str:
    """Lines over a shared x; ``None`` breaks a line (missing data is not bridged).
    ``x_range`` fixes the axis (e.g. the whole month, so missing days show as blank)."""
    _check(x, series, "line_chart")
    f = frame or Frame()
    lo, hi = _bounds([v for ys in series.values() for v in ys if v is not None])
    yticks = nice_ticks(lo, hi)
    xs = _x_scale(f, x, x_range)
    ys_ = _Scale(yticks[0], yticks[-1], f.top + f.plot_h, f.top)
    out = _open(f, title) + _bands(f, xs, bands) + _axes(f, xs, ys_, yticks, y_label, x_ticks)
    colours = [PALETTE[k % len(PALETTE)] for k in range(len(series))]
    for colour, (name, ys) in zip(colours, series.items(), strict=True):
        for run in _runs(x, ys):
            pts = [(xs(xv), ys_(yv)) for xv, yv in run]
            out.append(
                f'<path d="{_path(pts)}" fill="none" stroke="{colour}" '
                f'stroke-width="1.3"><title>{escape(name)}</title></path>'
            )
    out += _legend(f, list(series), colours)
    out.append("</svg>")
    return "\n".join(out)


def stacked_area_chart(
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    y_label: str,
    x_ticks: Sequence[tuple[float, str]] = (),
    bands: Sequence[Band] = (),
    frame: Frame | None = None,
    x_range: tuple[float, float] | None = None,
) -> str:
    """Areas stacked in the given order. A point where any series is ``None`` is a gap in
    every area; values must be >= 0 (a negative is a caller bug)."""
    _check(x, series, "stacked_area_chart")
    for name, ys in series.items():
        if any(v is not None and v < 0 for v in ys):
            raise ValueError(f"stacked_area_chart: series {name!r} has negative values")
    f = frame or Frame()
    present = [all(ys[k] is not None for ys in series.values()) for k in range(len(x))]
    tops: list[list[float | None]] = []
    running: list[float | None] = [0.0 if p else None for p in present]
    for ys in series.values():
        running = [
            None if r is None else r + float(v or 0.0) for r, v in zip(running, ys, strict=True)
        ]
        tops.append(running)
    yticks = nice_ticks(0.0, max((v for v in running if v is not None), default=1.0))
    xs = _x_scale(f, x, x_range)
    ys_ = _Scale(yticks[0], yticks[-1], f.top + f.plot_h, f.top)
    out = _open(f, title) + _bands(f, xs, bands) + _axes(f, xs, ys_, yticks, y_label, x_ticks)
    colours = [PALETTE[k % len(PALETTE)] for k in range(len(series))]
    below: list[float | None] = [0.0 if p else None for p in present]
    for colour, name, top in zip(colours, series, tops, strict=True):
        pairs = [
            None if t is None or b is None else (t, b) for t, b in zip(top, below, strict=True)
        ]
        for run in _pair_runs(x, pairs):
            upper = [(xs(xv), ys_(t)) for xv, (t, _) in run]
            lower = [(xs(xv), ys_(b)) for xv, (_, b) in run][::-1]
            out.append(
                f'<path d="{_path(upper + lower)} Z" fill="{colour}" '
                f'fill-opacity="0.75" stroke="none"><title>{escape(name)}</title></path>'
            )
        below = top
    out += _legend(f, list(series), colours)
    out.append("</svg>")
    return "\n".join(out)


def _pair_runs(
    x: Sequence[float], pairs: Sequence[tuple[float, float] | None]
) -> list[list[tuple[float, tuple[float, float]]]]:
    runs: list[list[tuple[float, tuple[float, float]]]] = [[]]
    for xv, p in zip(x, pairs, strict=True):
        if p is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((xv, p))
    return [r for r in runs if r]


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    y_label: str,
    value_labels: Sequence[str] | None = None,
    frame: Frame | None = None,
) -> str:
    """Vertical bars from zero (negatives go down, red); ``value_labels`` print on each bar
    (pass the exact figures, e.g. Decimal strings, so the chart never shows re-rounded money).
    """
    if len(labels) != len(values):
        raise ValueError(f"bar_chart: {len(labels)} labels for {len(values)} values")
    if value_labels is not None and len(value_labels) != len(values):
        raise ValueError("bar_chart: value_labels must match values")
    f = frame or Frame(height=300, bottom=70, right=30)
    lo, hi = _bounds(list(values))
    yticks = nice_ticks(lo, hi)
    ys_ = _Scale(yticks[0], yticks[-1], f.top + f.plot_h, f.top)
    out = _open(f, title) + _axes(f, _Scale(0, 1, 0, 1), ys_, yticks, y_label, ())
    n = max(len(values), 1)
    slot = f.plot_w / n
    zero = ys_(0.0)
    for k, (label, v) in enumerate(zip(labels, values, strict=True)):
        x = f.left + slot * k + slot * 0.15
        y = ys_(v)
        top, h = (y, zero - y) if v >= 0 else (zero, y - zero)
        colour = PALETTE[2] if v >= 0 else PALETTE[3]
        text = value_labels[k] if value_labels is not None else fmt_num(v)
        out.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{max(h, 0.5):.1f}" fill="{colour}">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
        )
        ty = top - 4 if v >= 0 else zero - 4  # clear of the category labels below
        out.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{ty:.1f}" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
        out.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{f.top + f.plot_h + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    out.append(
        f'<line x1="{f.left}" y1="{zero:.1f}" x2="{f.left + f.plot_w}" '
        f'y2="{zero:.1f}" stroke="#000"/>'
    )
    out.append("</svg>")
    return "\n".join(out)
