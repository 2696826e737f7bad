// Public view: service status per sector and district, incidents in plain words, and the crisis notices
// that verify. Nothing here needs a token, and the API's public resources carry no node, asset, address,
// key or transaction: the page shows only what they carry.

import { api, clear, el, errorLine, fill, fmtAgo, fmtPct, items, tone, loaded } from "./api.js";
import { checkNotice } from "./notice_check.js";
import { shell } from "./shell.js";

document.body.classList.add("public");
const dot = shell("public");
const main = document.getElementById("main");

const WORDS = { ok: "Working normally", warn: "Reduced service", bad: "Service interrupted", unknown: "No recent report" };
const RANK = { bad: 3, warn: 2, unknown: 1, ok: 0 };

function stateTone(row) {
  const t = tone(row.state ?? row.status);
  if (t !== "unknown") return t;
  if (typeof row.availability !== "number") return "unknown";
  return row.availability >= 99 ? "ok" : row.availability >= 50 ? "warn" : "bad";
}

/** A sector's last hour as a small line (0..100 %, a minute a point; a minute without a report is a gap),
 * drawn on a canvas (no markup from data, and nothing to fetch). */
function sparkline(values) {
  if (!values || !values.some((v) => typeof v === "number")) return null;
  const width = 120, height = 28, ratio = window.devicePixelRatio || 1;
  const canvas = el("canvas", { class: "spark", width: Math.round(width * ratio), height: Math.round(height * ratio),
    role: "img", "aria-label": "service over the last hour" });
  const ctx = canvas.getContext("2d");
  if (!ctx) return null;
  ctx.scale(ratio, ratio);
  ctx.strokeStyle = ctx.fillStyle = "#93a4b5";
  ctx.lineWidth = 1.5;
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const y = (v) => 1 + (height - 2) * (1 - v / 100);
  values.forEach((v, i) => {
    if (typeof v !== "number") return;
    const before = typeof values[i - 1] === "number", after = typeof values[i + 1] === "number";
    if (!before && !after) ctx.fillRect(i * step - 1, y(v) - 1, 2, 2); // a lone minute: a dot
    if (!before) { ctx.beginPath(); ctx.moveTo(i * step, y(v)); } else ctx.lineTo(i * step, y(v));
    if (!after) ctx.stroke();
  });
  return canvas;
}

function renderStatus(box, rows, history = new Map()) {
  const bySector = new Map();
  for (const row of rows) {
    const list = bySector.get(row.sector) ?? [];
    list.push(row);
    bySector.set(row.sector, list);
  }
  if (!bySector.size) return clear(box, el("p", { class: "empty" }, "no service reports yet"));
  // sectors that report first, then the rest, each by name
  const reporting = (list) => list.some((r) => typeof r.availability === "number");
  const ordered = [...bySector.entries()].sort(([a, la], [b, lb]) => Number(reporting(lb)) - Number(reporting(la)) || a.localeCompare(b));
  clear(box, ordered.map(([sector, list]) => {
    const worst = list.map(stateTone).sort((a, b) => RANK[b] - RANK[a])[0];
    const avail = list.map((r) => r.availability).filter((a) => typeof a === "number");
    const updated = list.map((r) => r.updated).filter(Boolean).sort().pop();
    return el("article", { class: `tile ${worst}`, "data-sector": sector, "data-reported": String(avail.length > 0) },
      el("div", { class: "sector" }, sector),
      el("div", { class: "state" }, WORDS[worst]),
      avail.length ? el("div", { class: "big" }, fmtPct(avail.reduce((a, b) => a + b, 0) / avail.length / 100), el("small", {}, " of service delivered, last hour")) : null,
      sparkline(history.get(sector)),
      el("div", { class: "districts" }, list.filter((r) => r.district).map((r) => el("span", { class: `pill ${stateTone(r)}` }, r.district))),
      updated ? el("div", { class: "muted" }, `updated ${fmtAgo(updated)}`) : null);
  }));
}

async function loadStatus(box) {
  try {
    const [rows, hour] = await Promise.all([api("/public/status", { auth: false }),
      api("/public/availability?minutes=60", { auth: false }).catch(() => null)]); // the line is a nicety
    renderStatus(box, items(rows), new Map(items(hour).map((r) => [r.sector, r.availability])));
  } catch (err) {
    clear(box, errorLine(err));
  }
}

async function loadNotices(box) {
  await fill(box, async () => {
    const rows = items(await api("/notices?audience=public", { auth: false }));
    const shown = rows.filter((n) => checkNotice(n).verified);
    if (!shown.length) return el("li", { class: "empty" }, "no notice");
    return shown.map((n) => el("li", { class: "info" },
      el("div", { class: "title" }, n.sector ? `${n.sector}${n.district ? ` · ${n.district}` : ""}` : "City notice",
        " ", el("span", { class: "notice-ok" }, "✓ verified")),
      el("div", {}, n.text ?? ""),
      el("div", { class: "meta" }, fmtAgo(n.created))));
  });
}

async function start() {
  const status = el("div", { class: "tiles", id: "status" }, el("p", { class: "empty" }, "loading…"));
  const incidents = el("ul", { class: "feed", id: "incidents" });
  const notices = el("ul", { class: "feed", id: "notices" });
  clear(main,
    el("h1", {}, "City services"),
    status,
    el("div", { class: "grid two" },
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Incidents")), incidents),
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Official notices")), notices)));
  await Promise.all([loadStatus(status), loadNotices(notices), fill(incidents, async () => {
    const rows = items(await api("/public/incidents", { auth: false }));
    if (!rows.length) return el("li", { class: "ok" }, el("div", { class: "title" }, "No incident in progress"));
    return rows.map((r) => el("li", { class: "bad" },
      el("div", { class: "title" }, `${r.sector}${r.district ? ` · ${r.district}` : ""}`),
      el("div", {}, r.text ?? ""),
      el("div", { class: "meta" }, `since ${fmtAgo(r.since)}`)));
  })]);
  loaded();
  // the stream needs a token: the public page polls (the figures are an hour's average anyway)
  if (dot) dot.className = "live-dot on";
  setInterval(() => { loadStatus(status); loadNotices(notices); }, 10_000);
}

start().catch((err) => main.prepend(errorLine(err)));
