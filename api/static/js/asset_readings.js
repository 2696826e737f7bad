// One asset's recent readings, a small uPlot chart per sensor (at most six), with the anomaly and fault
// scores the oracles' verdicts gave the asset drawn as points on a second scale (and each verdict's
// threshold), from GET /readings/{sector}/{asset}. Text-only DOM; errors are the API's sentence.

import uPlot from "/vendor/uplot/uPlot.esm.js";
import { api, clear, el, errorLine, fmtNum, fmtTime } from "./api.js";

const MAX_CHARTS = 6;
const LIMIT = 1500; // readings asked for, all sensors together
const charts = new WeakMap(); // box → its uPlot instances, destroyed when another asset is shown

function boxIn(container) {
  let box = container.querySelector(":scope > .asset-readings");
  if (!box) {
    box = el("div", { class: "asset-readings" });
    container.append(box);
  }
  return box;
}

function scoreTime(s) {
  const t = Date.parse(s.observed_at ?? s.time ?? "");
  return Number.isFinite(t) ? t / 1000 : null;
}

/** x: the readings' times and the scores' (within the readings' span), merged; y: value, score, threshold. */
function aligned(series, scores) {
  const times = series.time_ms.map((t) => t / 1000);
  const lo = times[0];
  const hi = times[times.length - 1];
  const marks = scores.map((s) => [scoreTime(s), s]).filter(([t, s]) => t !== null && t >= lo && t <= hi && s.score !== null);
  const xs = [...new Set([...times, ...marks.map(([t]) => t)])].sort((a, b) => a - b);
  const at = new Map(times.map((t, i) => [t, series.values[i]]));
  const scoreAt = new Map(marks.map(([t, s]) => [t, s]));
  return {
    data: [xs, xs.map((t) => (at.has(t) ? at.get(t) : null)),
      xs.map((t) => (scoreAt.has(t) ? scoreAt.get(t).score : null)),
      xs.map((t) => (scoreAt.has(t) ? scoreAt.get(t).threshold : null))],
    marked: marks.length,
  };
}

function chart(box, series, scores, width) {
  const { data, marked } = aligned(series, scores);
  const holder = el("div", { class: "mini-chart" });
  box.append(el("div", { class: "meta" }, `${series.sensor} · ${series.quantity}${series.unit ? ` (${series.unit})` : ""} · `
    + `${series.values.length} readings ${fmtTime(series.first)} – ${fmtTime(series.last)}`
    + (marked ? ` · ${marked} verdict score${marked === 1 ? "" : "s"}` : "")), holder);
  // at least a minute across (uPlot would widen a single point to years)
  if (data[0].length && data[0][data[0].length - 1] - data[0][0] < 60) {
    const first = data[0][0] - 60;
    data[0].unshift(first);
    for (const col of data.slice(1)) col.unshift(null);
  }
  return new uPlot({
    width, height: 130,
    legend: { show: false },
    scales: { x: { time: true }, score: { auto: true } },
    axes: [{ stroke: "#93a4b5", grid: { stroke: "#2b3a4a" } },
      { stroke: "#93a4b5", grid: { stroke: "#2b3a4a" }, size: 50 },
      { scale: "score", side: 1, stroke: "#ff4d4f", grid: { show: false }, size: 40 }],
    series: [{},
      { label: series.sensor, stroke: "#4c8dff", width: 1.5, spanGaps: true },
      { label: "score", scale: "score", stroke: "#ff4d4f", paths: () => null, points: { show: true, size: 7, fill: "#ff4d4f" } },
      { label: "threshold", scale: "score", stroke: "#f5b700", paths: () => null, points: { show: true, size: 5, fill: "#f5b700" } }],
  }, data, holder);
}

/** Fills (a box of its own inside) `container` with `asset`'s readings and scores; a later call replaces it. */
export async function showReadings(container, sector, asset) {
  const box = boxIn(container);
  for (const old of charts.get(box) ?? []) old.destroy();
  charts.set(box, []);
  const want = `${sector}/${asset}`;
  box.dataset.asset = want;
  const heading = el("h3", {}, "Readings and anomaly scores");
  clear(box, heading, el("p", { class: "empty" }, "loading…"));
  let body;
  try {
    body = await api(`/readings/${encodeURIComponent(sector)}/${encodeURIComponent(asset)}?limit=${LIMIT}`);
  } catch (err) {
    if (box.dataset.asset === want) clear(box, heading, errorLine(err));
    return;
  }
  if (box.dataset.asset !== want) return; // another asset was tapped meanwhile
  const scores = body.scores ?? [];
  const sensors = (body.sensors ?? []).filter((s) => s.values.length);
  const newest = scores.length ? scores[scores.length - 1] : null;
  const summary = newest
    ? `${scores.length} verdict score${scores.length === 1 ? "" : "s"}; newest ${newest.kind} ${fmtNum(newest.score, 3)}`
      + ` (threshold ${fmtNum(newest.threshold, 3)}) at ${fmtTime(newest.observed_at ?? newest.time)}`
    : "no anomaly or fault verdict recorded about it";
  clear(box, heading, el("p", { class: "meta" }, summary));
  if (!body.oracle) {
    box.append(el("p", { class: "empty" }, `no telemetry store of a ${body.sector} oracle is kept where the API runs: no readings to draw`));
    return;
  }
  if (!sensors.length) {
    box.append(el("p", { class: "empty" }, `no reading of ${body.asset} among the newest ${body.scanned} arrivals of oracle ${body.oracle}`));
    return;
  }
  box.append(el("p", { class: "meta" }, `readings kept by oracle ${body.oracle}`
    + (sensors.length > MAX_CHARTS ? `; the first ${MAX_CHARTS} of ${sensors.length} sensors` : "")));
  const width = Math.max(240, box.clientWidth - 4);
  charts.set(box, sensors.slice(0, MAX_CHARTS).map((s) => chart(box, s, scores, width)));
}
