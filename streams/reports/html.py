"""Self-contained HTML: one page, inline CSS, inline SVG, no script and nothing fetched.

Figures of record are printed from their exact values (Decimal text) and carry
``data-metric`` / ``data-value`` attributes, so a test or an auditor can match every figure
on the page to the summary CSV.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from html import escape

import polars as pl

from transforms.gates import GateResult

_CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.pass{color:#176b17;font-weight:bold}.fail{color:#b00;font-weight:bold}
.note{background:#fff6d6;padding:6px 10px;border-left:4px solid #e0b000}
code{font-size:11px}
"""


def esc(value: object) -> str:
    return escape(cell_text(value))


def cell_text(value: object) -> str:
    """Text of a table cell: Decimal exactly as stored, floats shortest round-trip."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:,f}"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def money(value: Decimal) -> str:
    """USD with thousands separators, from the Decimal (never through a float)."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def page(title: str, sections: Iterable[str]) -> str:
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8"/>\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def section(title: str, *parts: str, anchor: str = "") -> str:
    a = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{a}>\n<h2>{escape(title)}</h2>\n" + "\n".join(parts) + "\n</section>"


def para(text: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<p{c}>{escape(text)}</p>"


def figure_table(rows: Sequence[tuple[str, str, object, str]]) -> str:
    """Figures of record: (metric column, label, exact value, unit); the value cell carries
    ``data-metric`` and ``data-value`` (the exact text as in the summary CSV)."""
    out = [
        '<table class="figures">',
        '<tr><th class="l">figure</th><th>value</th>'
        '<th class="l">unit</th><th class="l">column</th></tr>',
    ]
    for metric, label, value, unit in rows:
        exact = escape(_exact(value))
        shown = money(value) if unit == "USD" and isinstance(value, Decimal) else esc(value)
        out.append(
            f'<tr><td class="l">{escape(label)}</td>'
            f'<td data-metric="{escape(metric)}" data-value="{exact}">{shown}</td>'
            f'<td class="l">{escape(unit)}</td><td class="l"><code>{escape(metric)}'
            "</code></td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _exact(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def frame_table(
    frame: pl.DataFrame, *, left: Sequence[str] = (), max_rows: int = 400, caption: str = ""
) -> str:
    """A frame as an HTML table (first ``max_rows`` rows; says how many were left out)."""
    cols = frame.columns
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append(
        "<tr>"
        + "".join(f'<th class="{"l" if c in left else ""}">{escape(c)}</th>' for c in cols)
        + "</tr>"
    )
    for row in frame.head(max_rows).iter_rows():
        out.append(
            "<tr>"
            + "".join(
                f'<td class="{"l" if c in left else ""}">{esc(v)}</td>'
                for c, v in zip(cols, row, strict=True)
            )
            + "</tr>"
        )
    out.append("</table>")
    if frame.height > max_rows:
        out.append(para(f"{frame.height - max_rows} more row(s) in the CSV."))
    return "\n".join(out)


def gates_html(gates: Sequence[GateResult]) -> str:
    if not gates:
        return para("No quality gate was run.", "note")
    out = []
    for g in gates:
        mark = '<span class="pass">PASS</span>' if g.success else '<span class="fail">FAIL</span>'
        ok = len(g.outcomes) - len(g.failures)
        out.append(
            f"<h3>{escape(g.mart)}: {mark} ({ok}/{len(g.outcomes)} expectations, "
            f"{g.rows} rows)</h3>"
        )
        out.append(
            '<table><tr><th class="l">expectation</th><th class="l">target</th>'
            '<th>result</th><th>unexpected</th><th class="l">detail</th></tr>'
        )
        for o in g.outcomes:
            res = (
                '<span class="pass">pass</span>' if o.success else '<span class="fail">FAIL</span>'
            )
            out.append(
                f'<tr><td class="l">{escape(o.expectation)}</td>'
                f'<td class="l">{escape(o.target)}</td><td>{res}</td>'
                f"<td>{esc(o.unexpected_count)}</td>"
                f'<td class="l">{escape(o.detail[:200])}</td></tr>'
            )
        out.append("</table>")
    return "\n".join(out)


def list_html(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li><code>{escape(i)}</code></li>" for i in items) + "</ul>"


def details(summary: str, inner: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>\n{inner}\n</details>"
