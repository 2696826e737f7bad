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

function verdict(value, limit) {
  if (typeof value !== "number" || typeof limit !== "number") return pill("unknown", "not measured");
  return value <= limit ? pill("met", "met") : pill("missed", "missed");
}

/** One row per brief target: what the last scenario measured, in field time, against it. */
function kpiRows(report) {
  const k = report.kpis ?? {};
  const t = report.targets ?? {};
  const brief = t.brief ?? {};
  const acceptance = t.acceptance ?? {};
  const field = k.field ?? {};
  const detection = k.detection_time_s ?? field.detection_p95_s;
  const response = k.cross_system_response_s ?? field.cross_system_response_p95_s;
  const availability = k.availability ?? {};
  const worst = Object.values(availability).filter((v) => typeof v === "number");
  const uptime = worst.length ? Math.min(...worst) : null;
  const baseline = k.baseline?.availability ?? {};
  const baseWorst = Object.values(baseline).filter((v) => typeof v === "number");
  const restoration = k.restoration_time_s ?? field.restoration_p95_s;
  const futureDetect = brief.detection_time_s?.future;
  return [
    { kpi: "Detection time (p95)", measured: seconds(detection),
      target: futureDetect ? `${seconds(futureDetect[0])}–${seconds(futureDetect[1])} (today ${seconds(brief.detection_time_s.current?.[0])}–${seconds(brief.detection_time_s.current?.[1])})` : "—",
      ok: verdict(detection, acceptance.detection_p95_s ?? futureDetect?.[1]) },
    { kpi: "Cross-system response (p95)", measured: seconds(response),
      target: brief.cross_system_response_s?.future ? `≤ ${seconds(brief.cross_system_response_s.future)}` : "—",
      ok: verdict(response, acceptance.cross_system_response_p95_s ?? brief.cross_system_response_s?.future) },
    { kpi: "Uptime (worst sector)", measured: fmtPct(uptime),
      target: typeof brief.uptime === "number" ? fmtPct(brief.uptime) : "—",
      ok: typeof uptime === "number" && typeof brief.uptime === "number" ? verdict(-uptime, -brief.uptime) : pill("unknown", "not measured") },
    { kpi: "Recovery vs baseline", measured: `${seconds(restoration)} to restore`,
      target: baseWorst.length ? `unattended: ${fmtPct(Math.min(...baseWorst))} availability` : "—",
      ok: typeof uptime === "number" && baseWorst.length ? verdict(-uptime, -Math.min(...baseWorst)) : pill("unknown", "not measured") },
  ];
}

async function loadKpis(box, tiles) {
  await fill(box, async () => {
    const data = await api("/kpis");
    const reports = items(data);
    const latest = reports.length ? reports[0] : data;
    const report = latest.report ?? latest;
    if (!report || !report.kpis) return el("p", { class: "empty" }, "no scenario report yet: run `qeaims scenario run storm-day`");
    const rows = kpiRows(report);
    clear(tiles, rows.map((r) => stat(r.kpi, r.measured, r.ok.classList.contains("ok") ? "ok" : r.ok.classList.contains("bad") ? "bad" : "info")));
    return el("div", {},
      el("p", { class: "muted" }, `scenario ${report.scenario ?? latest.scenario ?? "?"}`,
        latest.created ?? latest.time ? ` · ${fmtAgo(latest.created ?? latest.time)}` : "",
        ` · ${report.targets?.unit ?? "field seconds"}`),
      table(rows, [["kpi", "KPI"], ["measured", "measured"], ["target", "target"], ["ok", "target met"]]));
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
  if (!sectors.length) return;
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
  live((type) => { if (type === "node-status") loadIncidents(); }, { dot, topics: ["node-status"] });
  setInterval(() => loadStatus(chartBox), 10_000);
  window.addEventListener("resize", () => chart && chart.setSize({ width: Math.max(280, chartBox.clientWidth - 4), height: 240 }));
}

start().catch((err) => main.prepend(errorLine(err)));
