"""Inline SVG helpers: well-formed XML, gaps not bridged, bad input refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from streams.reports import svg

NS = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(("lo", "hi", "first", "last", "step"), [
    (0.0, 97.0, 0.0, 100.0, 20.0),
    (0.0, 1.0, 0.0, 1.0, 0.2),
    (-1_000_000.0, 450_000.0, -1_000_000.0, 500_000.0, 500_000.0),
    (5.0, 5.0, 5.0, 6.0, 0.2),  # flat series still gets an axis
])
def test_nice_ticks_are_round_and_cover(lo: float, hi: float, first: float, last: float,
                                        step: float) -> None:
    ticks = svg.nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi
    assert ticks[0] == pytest.approx(first) and ticks[-1] == pytest.approx(last)
    assert ticks[1] - ticks[0] == pytest.approx(step)


@pytest.mark.parametrize(("value", "text"), [(1200.0, "1.2k"), (3_500_000.0, "3.5M"),
                                             (-2_000_000_000.0, "-2G"), (0.25, "0.25")])
def test_axis_labels_are_short(value: float, text: str) -> None:
    assert svg.fmt_num(value) == text


def _paths(doc: str) -> list[ET.Element]:
    return ET.fromstring(doc).findall(f".//{NS}path")


def test_line_chart_breaks_at_missing_values_and_escapes_labels() -> None:
    doc = svg.line_chart([0, 1, 2, 3, 4], {"a<b": [1.0, 2.0, None, 4.0, 5.0]},
                         title="T & U", y_label="MWh", x_ticks=[(0, "Nov 01")],
                         bands=[(1, 2, "curtail <x>")])
    root = ET.fromstring(doc)  # raises on malformed XML
    assert root.tag == f"{NS}svg"
    assert len(_paths(doc)) == 2  # one run before the gap, one after
    assert "a&lt;b" in doc and "T &amp; U" in doc and "curtail &lt;x&gt;" in doc


def test_stacked_area_gap_and_order() -> None:
    doc = svg.stacked_area_chart([0, 1, 2, 3], {"AI": [1.0, 1.0, None, 1.0],
                                                "mining": [2.0, 2.0, 2.0, 2.0]},
                                 title="E", y_label="MWh")
    # a hole in any series is a hole in every area: 2 runs x 2 series
    assert len(_paths(doc)) == 4


@pytest.mark.parametrize(("call", "match"), [
    (lambda: svg.stacked_area_chart([0, 1], {"a": [1.0, -1.0]}, title="t", y_label="y"),
     "negative"),
    (lambda: svg.line_chart([0, 1], {"a": [1.0]}, title="t", y_label="y"), "1 points"),
    (lambda: svg.line_chart([0, 1], {}, title="t", y_label="y"), "no series"),
    (lambda: svg.bar_chart(["a"], [1.0, 2.0], title="t", y_label="y"), "labels"),
])
def test_bad_chart_input_is_refused(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_bar_chart_prints_given_value_labels() -> None:
    doc = svg.bar_chart(["forward", "net"], [-996450.0, 12.5], title="Money", y_label="USD",
                        value_labels=["-$996,450.00", "$12.50"])
    ET.fromstring(doc)
    assert "-$996,450.00" in doc and "$12.50" in doc
    rects = ET.fromstring(doc).findall(f".//{NS}rect")
    fills = [r.get("fill") for r in rects if r.get("fill") not in (None, "none")]
    assert fills == [svg.PALETTE[3], svg.PALETTE[2]]  # negative red, positive green
