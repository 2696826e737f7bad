// Executive view: the latest scenario KPIs beside the brief's targets (field seconds), availability per
// sector over time (uPlot: the last hour from /public/availability at once, then a point a minute), and the
// incidents open now.

import uPlot from "/vendor/uplot/uPlot.esm.js";
import { api, clear, el, errorLine, fill, fmtAgo, fmtNum, fmtPct, items, pctDigits, pill, stat, table, loaded } from "./api.js";
import { live } from "./live.js";
import { needToken, shell } from "./shell.js";

const dot = shell("executive");
const main = document.getElementById("main");
const PALETTE = ["#4cc2ff", "#2ecc71", "#f5b700", "#ff7ab6", "#b28dff", "#ff8c42"];
const HISTORY = 24 * 60; // points kept per sector: a day of minutes
const OPEN_MINUTES = 60; // drawn at once when the page opens
const POLL_MINUTES = 5; // asked for on each refresh: the minute under way and the few before it, settled

const series = new Map(); // sector → Map(unix s of a minute's start → availability in percent, or null)
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
  if (typeof brief === "number") return brief <= 1 ? fmtPct(brief, pctDigits(brief)) : seconds(brief);
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
  const digits = pctDigits(f.brief); // as many decimals as the uptime target has: 99.998 % beside 99.998 %
  return {
    kpi: availability ? `Availability · ${f.figure.slice("availability_".length)}` : (LABELS[f.figure] ?? f.figure),
    measured: availability ? fmtPct(f.value, digits) : seconds(f.value),
    target: availability ? `uptime ${briefText(f.brief)}` : (typeof f.target === "number" ? `≤ ${seconds(f.target)}` : "—"),
    brief: availability ? (typeof f.automation_off === "number" ? `automation off: ${fmtPct(f.automation_off, digits)}` : "—") : briefText(f.brief),
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
    const worstDigits = avail.length ? pctDigits(avail[0].brief) : 1;
    const tile = (row, label) => (row ? stat(label, row.measured, row.good === null ? "info" : row.good ? "ok" : "bad") : null);
    clear(tiles,
      tile(pick("detection_p95_s"), "detection p95 (field time)"),
      tile(pick("cross_system_response_p95_s"), "cross-system response p95"),
      worst === null ? null : stat("worst sector availability", fmtPct(worst, worstDigits), worst >= 0.99 ? "ok" : worst >= 0.9 ? "warn" : "bad"),
      latest.audit_ok === null ? null : stat("audit of every event", latest.audit_ok ? "✓ valid" : "✗ invalid", latest.audit_ok ? "ok" : "bad"));
    return el("div", {},
      el("p", { class: "muted" }, `${latest.scenario} · written ${fmtAgo(latest.written)}`,
        latest.speed ? ` · twins at ${latest.speed}×` : "", " · times in field seconds (the city's clock)"),
      table(rows, [["kpi", "KPI"], ["measured", "measured"], ["target", "acceptance"], ["brief", "system brief"], ["ok", "met"]]),
      reports.length > 1 ? el("p", { class: "muted" }, `other scenarios: ${reports.slice(1).map((r) => r.scenario).join(", ")}`) : null);
  });
}

/** Merge a /public/availability answer: each sector's minutes (the newest one, under way, is overwritten
 * as it fills), keeping the last HISTORY minutes. */
function merge(body) {
  const start = Date.parse(body.start) / 1000;
  const step = body.step_s || 60;
  if (!Number.isFinite(start)) return;
  for (const row of items(body)) {
    const points = series.get(row.sector) ?? new Map();
    (row.availability ?? []).forEach((value, i) => points.set(start + i * step, typeof value === "number" ? value : null));
    const times = [...points.keys()].sort((a, b) => a - b);
    for (const t of times.slice(0, Math.max(0, times.length - HISTORY))) points.delete(t);
    series.set(row.sector, points);
  }
}

/** uPlot draws a line between two reported minutes only: a minute with no reported neighbour (a sector that
 * just began reporting, or one report between gaps) is drawn as a dot, else it would not show at all. */
function lonePoints(u, si, show) {
  if (show) return null; // uPlot draws every point anyway
  const ys = u.data[si];
  const lone = [];
  for (let i = 0; i < ys.length; i++) if (ys[i] != null && ys[i - 1] == null && ys[i + 1] == null) lone.push(i);
  return lone.length ? lone : null;
}

function redraw(box) {
  const sectors = [...series.keys()].sort();
  const reported = sectors.some((sector) => [...series.get(sector).values()].some((v) => v !== null));
  if (!reported) {
    if (chart) chart.destroy();
    chart = null;
    clear(box, el("p", { class: "empty" }, "no service report from the twins in the last hour yet"));
    return;
  }
  const times = [...new Set(sectors.flatMap((s) => [...series.get(s).keys()]))].sort((a, b) => a - b);
  // a null is a minute without a report: drawn as a gap, never as a level the sector did not report
  const data = [times, ...sectors.map((s) => times.map((t) => series.get(s).get(t) ?? null))];
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
    series: [{}, ...sectors.map((s, i) => ({ label: s, stroke: PALETTE[i % PALETTE.length], width: 2,
      value: (u, v) => (v == null ? "—" : fmtPct(v / 100)), points: { size: 5, filter: lonePoints } }))],
  }, data, box);
}

async function loadAvailability(box, minutes) {
  try {
    merge(await api(`/public/availability?minutes=${minutes}`, { auth: false }));
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
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Availability per sector"), el("small", {}, "per minute, %")), chartBox)),
    el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Incidents")), incidents));
  const loadIncidents = () => fill(incidents, async () => {
    const rows = items(await api("/public/incidents", { auth: false }));
    if (!rows.length) return el("li", { class: "ok" }, el("div", { class: "title" }, "No incident in progress"));
    return rows.map((r) => el("li", { class: "bad" }, el("div", { class: "title" }, `${r.sector} · ${r.district ?? ""}`),
      el("div", {}, r.text ?? ""), el("div", { class: "meta" }, `since ${fmtAgo(r.since)}`)));
  });
  await Promise.all([loadKpis(kpis, tiles), loadAvailability(chartBox, OPEN_MINUTES), loadIncidents()]);
  loaded();
  live((type) => { if (type === "node-status" || type === "resync") loadIncidents(); }, { dot, topics: ["node-status"] });
  setInterval(() => loadAvailability(chartBox, POLL_MINUTES), 15_000);
  window.addEventListener("resize", () => chart && chart.setSize({ width: Math.max(280, chartBox.clientWidth - 4), height: 240 }));
}

start().catch((err) => main.prepend(errorLine(err)));
