"""Terminal rendering of ``ObserveState`` with rich: ``render(state)`` returns a renderable
that ``spillway watch`` refreshes in a ``rich.live.Live`` and ``spillway run`` can embed.

Pure: it reads the state and the ``now_s`` it is given; nothing is consumed here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streams.observe import state as st
from streams.observe.state import ObserveState

BAR_WIDTH = 40
"""Cells of the power bar and sparklines: fits an 80-column terminal."""
SPARK = "▁▂▃▄▅▆▇█"
USE_STYLES = (
    ("ai_w", "AI", "magenta"),
    ("mining_w", "mining", "yellow"),
    ("overhead_w", "overhead", "cyan"),
)


def _mw(w: float | None) -> str:
    return "—" if w is None else f"{w / 1e6:,.1f} MW"


def _usd(x: float | None) -> str:
    return "—" if x is None else f"${x:,.2f}"


def _clock(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _secs(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} s"


def sparkline(values: list[float | None], width: int) -> str:
    """The last ``width`` values as block characters scaled between their min and max."""
    vals = [v for v in values[-width:] if v is not None]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo
    out = []
    for v in values[-width:]:
        if v is None:
            out.append(" ")
        else:
            i = 0 if span == 0 else round((v - lo) / span * (len(SPARK) - 1))
            out.append(SPARK[i])
    return "".join(out)


def power_bar(state: ObserveState, width: int = BAR_WIDTH) -> Text:
    """Uses stacked left to right, with the contract (│) and interconnection limit (┃)."""
    p = state.latest_power
    if p is None:
        return Text("no site power yet", style="dim")
    limit = st.interconnection_limit_w(state)
    scale = max(x for x in (p.total_w, p.contract_w, limit or 0.0, 1.0))
    cells = [(" ", "")] * width
    pos = 0
    for field, _label, style in USE_STYLES:
        n = round(max(getattr(p, field), 0.0) / scale * width)
        for i in range(pos, min(pos + n, width)):
            cells[i] = ("█", style)
        pos += n
    for value, mark, style in ((p.contract_w, "│", "bold white"), (limit, "┃", "bold red")):
        if value is not None and value > 0:
            i = min(width - 1, round(value / scale * width) - 1)
            cells[max(i, 0)] = (mark, style)
    text = Text()
    for ch, style in cells:
        text.append(ch, style=style)
    return text


def _header(state: ObserveState, now_s: float) -> Text:
    site = state.site
    name = f"{site.name} ({state.site_id})" if site else (state.site_id or "waiting for a site")
    t = Text.assemble(("Spillway ", "bold"), (name, "bold cyan"))
    if state.price_point:
        t.append(f" · {state.price_point}")
    t.append(f" · {_clock(now_s)} UTC")
    if state.last_message_s is not None:
        t.append(f" · last message {now_s - state.last_message_s:.1f} s ago", style="dim")
    return t


def _power_panel(state: ObserveState) -> Panel:
    p = state.latest_power
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="left")
    grid.add_column(justify="right")
    grid.add_column(justify="left")
    if p is None:
        return Panel(Text("no site power yet", style="dim"), title="Power by use")
    for field, label, style in USE_STYLES:
        grid.add_row(Text(label, style=style), _mw(getattr(p, field)), "")
    grid.add_row(Text("total", style="bold"), _mw(p.total_w), f"POI meter {_mw(p.poi_meter_w)}")
    grid.add_row(
        Text("contract", style="bold white"),
        _mw(p.contract_w),
        f"{p.total_w / p.contract_w:.0%} used" if p.contract_w > 0 else "",
    )
    limit = st.interconnection_limit_w(state)
    grid.add_row(
        Text("interconnection", style="bold red"),
        _mw(limit),
        f"{p.total_w / limit:.0%} of limit" if limit else "",
    )
    totals = state.power.column_arrays()["total_w"]
    grid.add_row("", "", "")
    grid.add_row("stack", "", power_bar(state))
    grid.add_row(
        "total, last", f"{len(totals)} s", Text(sparkline(totals, BAR_WIDTH), style="green")
    )
    flags = f" · flags: {', '.join(p.flags)}" if p.flags else ""
    sub = (
        f"second {_clock(p.ts_s)} · {p.hashrate_ths / 1e6:,.2f} EH/s · latency "
        f"{p.emitted_s - p.ts_s:.2f} s{flags}"
    )
    return Panel(grid, title="Power by use", subtitle=sub)


def _surplus_panel(state: ObserveState) -> Panel:
    p = state.latest_power
    lines = Text()
    if p is not None:
        style = "green" if p.surplus_w >= 0 else "bold red"
        word = "surplus" if p.surplus_w >= 0 else "deficit"
        lines.append(f"{word} now {_mw(abs(p.surplus_w))}", style=style)
    s = state.surplus
    if s is not None:
        since = f"since {_clock(s.start_s)}" if s.end_s is None else f"closed {_clock(s.end_s)}"
        lines.append(
            f"\nevent {s.event_id} ({s.kind}) {since}: {_mw(s.surplus_w)}, "
            f"absorbed by mining {_mw(s.absorbed_w)}, sold back "
            f"{_mw(s.unabsorbed_w)}; {s.energy_wh / 1e6:,.2f} MWh so far"
        )
    if not lines:
        lines.append("no surplus yet", style="dim")
    return Panel(lines, title="Surplus")


def _market_panel(state: ObserveState) -> Panel:
    text = Text()
    price = st.current_price(state)
    be = st.fleet_breakeven(state)
    if price is None:
        text.append("no real-time price yet", style="dim")
    else:
        above = be is not None and price[1] > be
        text.append(f"RT {_usd(price[1])}/MWh", style="bold red" if above else "bold green")
        text.append(f" (interval {_clock(price[0])})")
    text.append(f"  vs fleet breakeven {_usd(be)}/MWh")
    hp = st.hashprice(state)
    if hp is not None:
        text.append(f" at hashprice {_usd(hp)}/PH/day", style="dim")
    models = st.model_breakevens(state)
    if models:
        text.append("\nby model: " + ", ".join(f"{m} {_usd(v)}" for m, v in models.items()))
    prices = [v for _k, v in state.prices.items()]
    if prices:
        text.append(f"\nlast {len(prices)} intervals ")
        text.append(sparkline(list(prices), 48), style="yellow")
    carbon = st.current_carbon(state)
    rate = st.carbon_rate_kg_per_h(state)
    text.append("\ncarbon ")
    if carbon is None:
        text.append("no intensity yet", style="dim")
    else:
        text.append(f"{carbon[1]:,.0f} gCO2eq/kWh (hour {_clock(carbon[0])})")
        if rate is not None:
            text.append(f" → {rate / 1000:,.1f} tCO2eq/h location-based")
    return Panel(text, title="Price, breakeven, carbon")


def _curtailment_table(state: ObserveState, now_s: float) -> Table:
    table = Table(title="Active curtailments", expand=True, title_justify="left")
    for col in ("event", "state", "reasons", "target", "baseline", "response", "deadline"):
        table.add_column(col)
    for e in state.active_curtailments.values():
        elapsed = st.curtailment_elapsed_s(e, now_s)
        response = _secs(elapsed) + ("" if e.response_time_s is not None else " …")
        met = {
            True: Text("met", style="green"),
            False: Text("MISSED", style="bold red"),
            None: Text(f"by {_clock(e.deadline_s)}"),
        }[e.deadline_met]
        reasons = ", ".join(e.reasons)
        if e.reason_details:
            reasons += f" ({'; '.join(e.reason_details)})"
        table.add_row(
            e.event_id,
            e.kind,
            reasons,
            _mw(e.target_mining_w),
            _mw(e.baseline_mining_w),
            response,
            met,
        )
    if not state.active_curtailments:
        table.add_row(Text("none", style="dim"), "", "", "", "", "", "")
    return table


def _alert_table(state: ObserveState, limit: int = 8) -> Table:
    table = Table(title=f"Alerts ({len(state.firing)} firing)", expand=True, title_justify="left")
    for col in ("time", "severity", "state", "condition", "subject", "message"):
        table.add_column(col)
    colour = {"critical": "bold red", "warning": "yellow", "info": "blue"}
    for a in list(reversed(state.alerts))[:limit]:
        when = a.ended_at_s if a.state == "resolved" and a.ended_at_s else a.started_at_s
        table.add_row(
            _clock(when),
            Text(a.severity, style=colour[a.severity]),
            a.state,
            a.condition,
            a.subject,
            a.message,
        )
    if not state.alerts:
        table.add_row(Text("none", style="dim"), "", "", "", "", "")
    return table


def _flow_table(state: ObserveState, now_s: float) -> Table:
    table = Table(title="Throughput and consumer lag", expand=True, title_justify="left")
    for col, just in (
        ("topic", "left"),
        ("msg/s", "right"),
        ("received", "right"),
        ("lag", "right"),
        ("dead letters", "right"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    rates = st.throughput(state, now_s)
    topics = sorted(set(rates) | set(state.lag) | set(state.deadletters))
    for topic in topics:
        meter = state.rates.get(topic)
        table.add_row(
            topic,
            f"{rates.get(topic, 0.0):,.1f}",
            f"{meter.total if meter else 0:,}",
            f"{state.lag[topic]:,}" if topic in state.lag else "—",
            f"{state.deadletters.get(topic, 0):,}",
        )
    if not topics:
        table.add_row(Text("nothing received yet", style="dim"), "", "", "", "")
    notes = []
    if state.commands:
        notes.append(f"{state.commands} miner commands")
    if state.undecodable:
        notes.append("undecodable: " + ", ".join(f"{k} {v}" for k, v in state.undecodable.items()))
    if state.other_sites:
        notes.append("other sites ignored: " + ", ".join(state.other_sites))
    if notes:
        table.caption = " · ".join(notes)
    return table


def render(state: ObserveState, now_s: float | None = None) -> RenderableType:
    """The whole view: header, power, surplus, market, curtailments, alerts, flow."""
    now = time.time() if now_s is None else now_s
    return Group(
        _header(state, now),
        _power_panel(state),
        _surplus_panel(state),
        _market_panel(state),
        _curtailment_table(state, now),
        _alert_table(state),
        _flow_table(state, now),
    )
