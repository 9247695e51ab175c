// Spillway dashboard: live state from /api/events (Server-Sent Events; /api/state polling
// if the stream fails), marts from /api/marts. Charts are uPlot (vendored, MIT).
"use strict";

const MW = (w) => (w == null ? null : w / 1e6);
const fmtMW = (w) => (w == null ? "—" : `${(w / 1e6).toFixed(1)} MW`);
const fmtUSD = (x) => (x == null ? "—" : `$${Number(x).toFixed(2)}`);
const fmtTime = (s) => (s == null ? "—" : new Date(s * 1000).toISOString().slice(11, 19));
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const $ = (id) => document.getElementById(id);

const spillway = (window.spillway = { updates: 0, lastSnapshot: null, marts: null, charts: {} });

const axisStyle = { stroke: "#9aa7b3", grid: { stroke: "#26313c", width: 1 }, ticks: { stroke: "#26313c" } };
const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");

function width(el) { return Math.max(300, el.clientWidth - 4); }

// 24-hour UTC tick labels: seconds on the 1-second charts, minutes or days on the others.
const iso = (ts) => new Date(ts * 1000).toISOString();
const ticks = {
  seconds: (u, splits) => splits.map((t) => iso(t).slice(11, 19)),
  minutes: (u, splits) => splits.map((t) => iso(t).slice(11, 16)),
  hours: (u, splits) => splits.map((t) => `${iso(t).slice(5, 10)} ${iso(t).slice(11, 13)}h`),
};

function makeChart(id, series, extra = {}, xTicks = ticks.seconds, yLabel = "") {
  const el = $(id);
  const opts = Object.assign({
    width: width(el), height: 200, tzDate: utc,
    scales: { x: { time: true } },
    axes: [Object.assign({}, axisStyle, { values: xTicks }),
      Object.assign({}, axisStyle, { size: 60, label: yLabel, labelSize: 16 })],
    series: [{}, ...series],
    legend: { live: true },
  }, extra);
  const data = [[], ...series.map(() => [])];
  const chart = new uPlot(opts, data, el);
  spillway.charts[id] = chart;
  return chart;
}

// Curtailment events as shaded bands (issue to end) with a tick where the target was met.
function curtailmentBands(u) {
  const snap = spillway.lastSnapshot;
  if (!snap) return;
  const ctx = u.ctx, { left, top, width: w, height: h } = u.bbox;
  ctx.save();
  for (const ev of snap.curtailments.timeline) {
    const end = ev.ended_at_s ?? snap.now_s;
    let x0 = u.valToPos(ev.issued_at_s, "x", true), x1 = u.valToPos(end, "x", true);
    x0 = Math.max(left, x0); x1 = Math.min(left + w, x1);
    if (x1 <= x0) continue;
    ctx.fillStyle = "rgba(255, 92, 92, 0.16)";
    ctx.fillRect(x0, top, x1 - x0, h);
    if (ev.achieved_at_s != null) {
      const xa = u.valToPos(ev.achieved_at_s, "x", true);
      if (xa >= left && xa <= left + w) {
        ctx.fillStyle = "rgba(255, 92, 92, 0.7)";
        ctx.fillRect(xa - 1, top, 2, h);
      }
    }
  }
  ctx.restore();
}

const mwValue = (u, v) => (v == null ? "—" : `${v.toFixed(1)} MW`);
const powerChart = makeChart("chart-power", [
  { label: "AI", stroke: "#d16ee8", width: 2, value: mwValue },
  { label: "Mining", stroke: "#f2c94c", width: 2, value: mwValue },
  { label: "Overhead", stroke: "#56c7d8", width: 1.5, value: mwValue },
  { label: "Total", stroke: "#e8eef3", width: 2, value: mwValue },
  { label: "Contract", stroke: "#ffffff", width: 1.5, dash: [8, 4], value: mwValue },
  { label: "Interconnection limit", stroke: "#ff5c5c", width: 1.5, dash: [3, 3], value: mwValue },
], { height: 260, hooks: { drawClear: [curtailmentBands] } }, ticks.seconds, "MW");

const surplusChart = makeChart("chart-surplus", [
  { label: "Surplus", stroke: "#4cd07d", width: 2, fill: "rgba(76, 208, 125, 0.15)", value: mwValue },
], {}, ticks.seconds, "MW");

const usdValue = (u, v) => (v == null ? "—" : `$${v.toFixed(2)}`);
const priceChart = makeChart("chart-price", [
  { label: "RT price $/MWh", stroke: "#f2c94c", width: 2, value: usdValue,
    paths: uPlot.paths.stepped({ align: 1 }) },
  { label: "Fleet breakeven $/MWh", stroke: "#ff5c5c", width: 1.5, dash: [6, 4], value: usdValue,
    points: { show: false } },
], {}, ticks.minutes, "$/MWh");

const carbonChart = makeChart("chart-carbon", [
  { label: "gCO2eq/kWh", stroke: "#8fa3b8", fill: "rgba(143, 163, 184, 0.5)",
    paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false },
    value: (u, v) => (v == null ? "—" : v.toFixed(0)) },
], {}, ticks.hours, "gCO2eq/kWh");

function setKpi(id, text, cls) {
  const el = $(id);
  el.textContent = text;
  el.className = cls || "";
}

function renderKpis(s) {
  const p = s.latest_power;
  setKpi("kpi-ai", fmtMW(p && p.ai_w));
  setKpi("kpi-mining", fmtMW(p && p.mining_w));
  setKpi("kpi-overhead", fmtMW(p && p.overhead_w));
  const over = p && s.interconnection_limit_w != null && p.total_w > s.interconnection_limit_w;
  setKpi("kpi-total", fmtMW(p && p.total_w), over ? "bad" : "");
  setKpi("kpi-contract", fmtMW(p && p.contract_w));
  setKpi("kpi-limit", fmtMW(s.interconnection_limit_w));
  setKpi("kpi-surplus", fmtMW(p && p.surplus_w), p && p.surplus_w < 0 ? "bad" : "good");
  const price = s.prices.latest, be = s.prices.fleet_breakeven_usd_per_mwh;
  const above = price && be != null && price.usd_per_mwh > be;
  setKpi("kpi-price", price ? `${fmtUSD(price.usd_per_mwh)}/MWh` : "—", above ? "bad" : "good");
  setKpi("kpi-breakeven", be != null ? `${fmtUSD(be)}/MWh` : "—");
  const c = s.carbon.latest;
  setKpi("kpi-carbon", c ? `${c.g_per_kwh.toFixed(0)} g/kWh` : "—");
  setKpi("kpi-latency", p ? `${p.latency_s.toFixed(2)} s` : "—", p && p.latency_s > 1 ? "bad" : "");
  const firing = s.alerts.firing.length;
  setKpi("kpi-alerts", String(firing), firing ? "bad" : "good");
}

function renderCharts(s) {
  const pw = s.power;
  const limit = pw.t.map(() => MW(s.interconnection_limit_w));
  powerChart.setData([pw.t, pw.ai_w.map(MW), pw.mining_w.map(MW), pw.overhead_w.map(MW),
    pw.total_w.map(MW), pw.contract_w.map(MW), limit]);
  surplusChart.setData([pw.t, pw.surplus_w.map(MW)]);
  const iv = s.prices.intervals;
  const be = s.prices.fleet_breakeven_usd_per_mwh;
  const px = iv.map((r) => r.start_s), py = iv.map((r) => r.usd_per_mwh);
  if (iv.length) { px.push(px[px.length - 1] + 900); py.push(py[py.length - 1]); }  // hold the last interval to its end
  priceChart.setData([px, py, px.map(() => be)]);
  const hours = s.carbon.hours;
  carbonChart.setData([hours.map((r) => r.start_s), hours.map((r) => r.g_per_kwh)]);
}

function rows(tbody, html, cols) {
  tbody.innerHTML = html.length ? html.join("") : `<tr><td class="empty" colspan="${cols}">none</td></tr>`;
}

function renderTables(s) {
  rows($("curtailments").tBodies[0], s.curtailments.active.map((e) => {
    const response = e.response_time_s != null ? `${e.response_time_s.toFixed(1)} s`
      : `${e.elapsed_s.toFixed(1)} s…`;
    const met = e.deadline_met === true ? "met" : e.deadline_met === false ? "MISSED"
      : `by ${fmtTime(e.deadline_s)}`;
    const reasons = e.reasons.join(", ") + (e.reason_details.length ? ` (${e.reason_details.join("; ")})` : "");
    return `<tr class="${e.deadline_met === false ? "critical" : ""}"><td>${esc(e.event_id)}</td>` +
      `<td>${esc(e.kind)}</td><td>${esc(reasons)}</td><td class="num">${fmtMW(e.target_mining_w)}</td>` +
      `<td class="num">${fmtMW(e.baseline_mining_w)}</td><td class="num">${response}</td><td>${esc(met)}</td></tr>`;
  }), 7);
  rows($("alerts").tBodies[0], s.alerts.recent.slice(0, 12).map((a) => {
    const cls = a.state === "resolved" ? "resolved" : a.severity;
    const when = a.state === "resolved" && a.ended_at_s ? a.ended_at_s : a.started_at_s;
    return `<tr class="${cls}"><td>${fmtTime(when)}</td><td>${esc(a.severity)}</td>` +
      `<td>${esc(a.state)}</td><td>${esc(a.condition)}</td><td>${esc(a.subject)}</td>` +
      `<td>${esc(a.message)}</td></tr>`;
  }), 6);
  const topics = [...new Set([...Object.keys(s.throughput), ...Object.keys(s.lag),
    ...Object.keys(s.deadletters)])].sort();
  rows($("flow").tBodies[0], topics.map((t) =>
    `<tr><td>${esc(t)}</td><td class="num">${(s.throughput[t] ?? 0).toFixed(1)}</td>` +
    `<td class="num">${s.lag[t] ?? "—"}</td><td class="num">${s.deadletters[t] ?? 0}</td></tr>`), 4);
}

function renderStatus(s) {
  const site = s.site_name ? `${s.site_name} (${s.site_id})` : (s.site_id || "waiting for a site…");
  $("site").textContent = site + (s.settlement_point ? ` · ${s.settlement_point}` : "");
  const age = s.last_message_s == null ? null : s.now_s - s.last_message_s;
  const st = $("status");
  st.textContent = `updated ${fmtTime(s.now_s)} UTC · ` +
    (age == null ? "no messages yet" : `last message ${age.toFixed(1)} s ago`) +
    (s.feed_error ? ` · ${s.feed_error}` : "");
  st.className = "status" + (s.feed_error || (age != null && age > 10) ? " stale" : "");
}

function apply(s) {
  spillway.lastSnapshot = s;
  spillway.updates += 1;
  renderStatus(s);
  renderKpis(s);
  renderCharts(s);
  renderTables(s);
}

function renderMarts(m) {
  spillway.marts = m;
  $("marts-status").textContent = m.message;
  const mtd = $("mtd");
  const parts = [];
  const label = (k) => k.replace(/_/g, " ");
  for (const [k, v] of Object.entries(m.month_to_date || {})) {
    const text = k.endsWith("_usd") ? `$${v}` : typeof v === "number" ? v.toFixed(3) : v;
    parts.push(`<div>${esc(label(k))} <b>${esc(text)}</b></div>`);
  }
  for (const [k, v] of Object.entries(m.carbon_month_to_date || {})) {
    const text = k.endsWith("_g") ? `${(v / 1e6).toFixed(3)} t` : typeof v === "number" ? v.toFixed(3) : v;
    parts.push(`<div>carbon ${esc(label(k.replace(/_g$/, "")))} <b>${esc(text)}</b></div>`);
  }
  mtd.innerHTML = parts.length ? `<div>month to date ${esc(m.month || "")}</div>` + parts.join("") : "";
  const table = $("marts");
  const cols = m.intervals.length ? Object.keys(m.intervals[0]) : [];
  table.tHead.innerHTML = cols.length ? `<tr>${cols.map((c) => `<th>${esc(label(c))}</th>`).join("")}</tr>` : "";
  rows(table.tBodies[0], m.intervals.slice().reverse().map((r) => `<tr>${cols.map((c) =>
    `<td class="num">${esc(c === "interval_start_s" ? fmtTime(r[c]) : typeof r[c] === "number" ? r[c].toFixed(3) : r[c])}</td>`).join("")}</tr>`),
    Math.max(cols.length, 1));
}

function poll() {
  fetch("api/state").then((r) => r.json()).then(apply).catch(() => {});
}

function connect() {
  if (!window.EventSource) { setInterval(poll, 1000); return; }
  const es = new EventSource("api/events");
  es.onmessage = (ev) => apply(JSON.parse(ev.data));
  es.onerror = () => { $("status").className = "status stale"; };
}

function loadMarts() {
  fetch("api/marts").then((r) => r.json()).then(renderMarts).catch(() => {});
}

window.addEventListener("resize", () => {
  for (const [id, chart] of Object.entries(spillway.charts)) {
    chart.setSize({ width: width($(id)), height: chart.height });
  }
});

poll();
connect();
loadMarts();
setInterval(loadMarts, 10000);
