// Executive view: the latest scenario KPIs beside the brief's targets (field seconds), availability per
// sector over time (uPlot), and the incidents open now.

import uPlot from "/vendor/uplot/uPlot.esm.js";
import { api, clear, el, errorLine, fill, fmtAgo, fmtNum, fmtPct, items, pill, stat, table, loaded } from "./api.js";
import { live } from "./live.js";
import { needToken, shell } from "./shell.js";

const dot = shell("executive");
const main = document.getElementById("main");
const PALETTE = ["#4cc2ff", "#2ecc71", "#f5b700", "#ff7ab6", "#b28dff", "#ff8c42"];
const HISTORY = 720;

const series = new Map(); // sector → [[unix s, availability 0..1], ...]
let chart = null;

function seconds(value) {
  if (typeof value !== "number") return "—";
  if (value < 120) return `${fmtNum(value, 1)} s`;
  if (value < 7200) return `${fmtNum(value / 60, 1)} min`;
  return `${fmtNum(value / 3600, 1)} h`;
}

const LABELS = {
  detection_p95_s: "Detection time (p95)",
  confirmation_p95_s: "Confirmation (p95)",
  isolation_p95_s: "Isolation (p95)",
  cross_system_response_p95_s: "Cross-system response (p95)",
  restoration_p95_s: "Recovery: service restored (p95)",
};

function briefText(brief) {
  if (brief === null || brief === undefined) return "—";
  if (typeof brief === "number") return brief <= 1 ? fmtPct(brief) : seconds(brief);
  if (Array.isArray(brief)) return `${seconds(brief[0])}–${seconds(brief[1])}`;
  const parts = [];
  if (brief.future !== undefined) parts.push(`future ${briefText(brief.future)}`);
  if (brief.current !== undefined) parts.push(`today ${briefText(brief.current)}`);
  return parts.join(" · ") || "—";
}

/** Whether a figure meets its bar: a time at or under the acceptance p95 (else the brief's future), an
 * availability at or over the brief's uptime. */
function met(f) {
  if (typeof f.value !== "number") return null;
  if (f.figure.startsWith("availability_")) return typeof f.brief === "number" ? f.value >= f.brief : null;
  const future = f.brief && typeof f.brief === "object" && !Array.isArray(f.brief) ? f.brief.future : f.brief;
  const bar = f.target ?? (Array.isArray(future) ? future[1] : future);
  return typeof bar === "number" ? f.value <= bar : null;
}

function figureRow(f) {
  const availability = f.figure.startsWith("availability_");
  const ok = met(f);
  return {
    kpi: availability ? `Availability · ${f.figure.slice("availability_".length)}` : (LABELS[f.figure] ?? f.figure),
    measured: availability ? fmtPct(f.value) : seconds(f.value),
    target: availability ? `uptime ${briefText(f.brief)}` : (typeof f.target === "number" ? `≤ ${seconds(f.target)}` : "—"),
    brief: availability ? (typeof f.automation_off === "number" ? `automation off: ${fmtPct(f.automation_off)}` : "—") : briefText(f.brief),
    ok: ok === null ? pill("unknown", "no bar") : ok ? pill("met", "met") : pill("missed", "missed"),
    good: ok,
  };
}

async function loadKpis(box, tiles) {
  await fill(box, async () => {
    const reports = items(await api("/kpis")).slice().sort((a, b) => String(b.written).localeCompare(String(a.written)));
    if (!reports.length) return el("p", { class: "empty" }, "no scenario report yet: `qeaims scenario run storm-day` writes one");
    const latest = reports[0];
    const rows = latest.figures.map(figureRow);
    const pick = (name) => rows[latest.figures.findIndex((f) => f.figure === name)];
    const avail = latest.figures.filter((f) => f.figure.startsWith("availability_") && typeof f.value === "number");
    const worst = avail.length ? Math.min(...avail.map((f) => f.value)) : null;
    const tile = (row, label) => (row ? stat(label, row.measured, row.good === null ? "info" : row.good ? "ok" : "bad") : null);
    clear(tiles,
      tile(pick("detection_p95_s"), "detection p95 (field time)"),
      tile(pick("cross_system_response_p95_s"), "cross-system response p95"),
      worst === null ? null : stat("worst sector availability", fmtPct(worst), worst >= 0.99 ? "ok" : worst >= 0.9 ? "warn" : "bad"),
      latest.audit_ok === null ? null : stat("audit of every event", latest.audit_ok ? "✓ valid" : "✗ invalid", latest.audit_ok ? "ok" : "bad"));
    return el("div", {},
      el("p", { class: "muted" }, `${latest.scenario} · written ${fmtAgo(latest.written)}`,
        latest.speed ? ` · twins at ${latest.speed}×` : "", " · times in field seconds (the city's clock)"),
      table(rows, [["kpi", "KPI"], ["measured", "measured"], ["target", "acceptance"], ["brief", "system brief"], ["ok", "met"]]),
      reports.length > 1 ? el("p", { class: "muted" }, `other scenarios: ${reports.slice(1).map((r) => r.scenario).join(", ")}`) : null);
  });
}

function sample(rows) {
  // one availability per sector: the mean over its districts
  const bySector = new Map();
  for (const row of rows) {
    if (typeof row.availability !== "number") continue;
    const list = bySector.get(row.sector) ?? [];
    list.push(row.availability / 100); // the API gives percent
    bySector.set(row.sector, list);
    for (const [t, a] of row.history ?? []) addPoint(row.sector, t, a);
  }
  const now = Date.now() / 1000;
  for (const [sector, list] of bySector) addPoint(sector, now, list.reduce((a, b) => a + b, 0) / list.length);
}

function addPoint(sector, t, a) {
  const list = series.get(sector) ?? [];
  const time = typeof t === "number" ? (t > 1e12 ? t / 1000 : t) : Date.parse(t) / 1000;
  if (!Number.isFinite(time)) return;
  if (list.length && list[list.length - 1][0] >= time) return;
  list.push([time, a]);
  if (list.length > HISTORY) list.shift();
  series.set(sector, list);
}

function redraw(box) {
  const sectors = [...series.keys()].sort();
  if (!sectors.length) {
    clear(box, el("p", { class: "empty" }, "no service report from the twins yet"));
    return;
  }
  const times = [...new Set(sectors.flatMap((s) => series.get(s).map(([t]) => t)))].sort((a, b) => a - b);
  // at least ten minutes across however few samples there are yet (uPlot would widen one point to years)
  if (times[times.length - 1] - times[0] < 600) times.unshift(times[times.length - 1] - 600);
  const data = [times, ...sectors.map((s) => {
    const at = new Map(series.get(s));
    let last = null;
    return times.map((t) => { if (at.has(t)) last = at.get(t) * 100; return last; });
  })];
  const width = Math.max(280, box.clientWidth - 4);
  if (chart && chart.series.length === sectors.length + 1) {
    chart.setData(data);
    return;
  }
  if (chart) chart.destroy();
  clear(box);
  chart = new uPlot({
    width, height: 240,
    scales: { y: { range: [0, 100] } },
    axes: [{ stroke: "#93a4b5", grid: { stroke: "#2b3a4a" } },
      { stroke: "#93a4b5", grid: { stroke: "#2b3a4a" }, values: (u, v) => v.map((x) => `${x}%`), size: 50 }],
    series: [{}, ...sectors.map((s, i) => ({ label: s, stroke: PALETTE[i % PALETTE.length], width: 2, value: (u, v) => (v == null ? "—" : `${v.toFixed(2)}%`) }))],
  }, data, box);
}

async function loadStatus(box) {
  try {
    sample(items(await api("/public/status", { auth: false })));
    redraw(box);
  } catch (err) {
    clear(box, errorLine(err));
  }
}

async function start() {
  await needToken(main, "The executive view");
  const tiles = el("div", { class: "stats", id: "kpi-tiles" });
  const kpis = el("div", { id: "kpis" }, el("p", { class: "empty" }, "loading…"));
  const chartBox = el("div", { class: "chart", id: "availability" });
  const incidents = el("ul", { class: "feed", id: "incidents" });
  clear(main,
    el("h1", {}, "Executive summary"), tiles,
    el("div", { class: "grid two" },
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "KPIs against the targets")), kpis),
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Availability per sector"), el("small", {}, "live, %")), chartBox)),
    el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Incidents")), incidents));
  const loadIncidents = () => fill(incidents, async () => {
    const rows = items(await api("/public/incidents", { auth: false }));
    if (!rows.length) return el("li", { class: "ok" }, el("div", { class: "title" }, "No incident in progress"));
    return rows.map((r) => el("li", { class: "bad" }, el("div", { class: "title" }, `${r.sector} · ${r.district ?? ""}`),
      el("div", {}, r.text ?? ""), el("div", { class: "meta" }, `since ${fmtAgo(r.since)}`)));
  });
  await Promise.all([loadKpis(kpis, tiles), loadStatus(chartBox), loadIncidents()]);
  loaded();
  live((type) => { if (type === "node-status" || type === "resync") loadIncidents(); }, { dot, topics: ["node-status"] });
  setInterval(() => loadStatus(chartBox), 10_000);
  window.addEventListener("resize", () => chart && chart.setSize({ width: Math.max(280, chartBox.clientWidth - 4), height: 240 }));
}

start().catch((err) => main.prepend(errorLine(err)));
