// Technical view: the sector networks (cytoscape, drawn from /sectors/{s}/network) coloured by their
// on-chain node status, live alerts with the verdict that raised them, quorum votes, the controller's
// steps, and one asset's readings with its anomaly score.

import cytoscape from "/vendor/cytoscape/cytoscape.esm.min.mjs";
import {
  ALERT_KINDS, STEP_KINDS, api, clear, el, errorLine, fill, fmtScore, fmtTime, fmtValue, items, pill, sectorOf, stat,
  loaded, table, tone,
} from "./api.js";
import { showReadings } from "./asset_readings.js";
import { live, notifyAlert, notifyButton } from "./live.js";
import { needToken, shell } from "./shell.js";

const COLOURS = { ok: "#2ecc71", warn: "#f5b700", bad: "#ff4d4f", info: "#4c8dff", unknown: "#7d8b99" };
const ALERT_HOLD_MS = 10 * 60 * 1000; // a node with an alert in the last ten minutes is drawn red
const GROUP_MS = 2 * 60 * 1000; // alerts of one node and kind less than this apart are one card (one per oracle's verdict)

const state = {
  graphs: new Map(), // sector → cytoscape instance
  status: new Map(), // on-chain node → status word
  alerted: new Map(), // on-chain node → time of its last alert (ms)
  alerts: [], // every alerting event, newest first
  groups: [], // the cards: the alerts grouped by node and kind (groupAlerts)
  steps: [],
};

const dot = shell("technical");
const main = document.getElementById("main");

function payloadOf(event) {
  const p = event.payload ?? event.data ?? {};
  if (typeof p === "string") {
    try { return JSON.parse(p); } catch { return { text: p }; }
  }
  return p;
}

function nodeOf(event) {
  return event.node ?? event.node_id ?? payloadOf(event).node ?? "";
}

function timeOf(event) {
  return event.time ?? event.timestamp ?? event.at ?? null;
}

/** The verdict that raised an alert: its verdict/score/reason fields, in a line. */
function verdictOf(event) {
  const p = payloadOf(event);
  const keys = ["verdict", "label", "score", "threshold", "reason", "cause", "model", "confirmed_by", "action"];
  const parts = keys.filter((k) => p[k] !== undefined).map((k) => `${k} ${fmtValue(p[k])}`);
  if (!parts.length) parts.push(...Object.entries(p).slice(0, 4).map(([k, v]) => `${k} ${fmtValue(v)}`));
  return parts.join(" · ");
}

function nodeTone(node) {
  const since = state.alerted.get(node);
  if (since !== undefined && Date.now() - since < ALERT_HOLD_MS) return "bad";
  const status = state.status.get(node);
  if (status === undefined) return "unknown";
  if (status === "repairing") return "warn";
  return tone(status);
}

function recolour() {
  for (const cy of state.graphs.values()) {
    const red = new Set();
    cy.batch(() => {
      cy.elements().forEach((n) => {
        const anchor = n.data("anchor");
        const t = anchor ? nodeTone(anchor) : "unknown";
        n.data("tone", t);
        n.data("colour", n.isEdge() && t !== "bad" ? "#3b4d60" : COLOURS[t]); // a line is drawn red only when alerting
        if (t === "bad") red.add(anchor);
      });
    });
    cy.container().dataset.red = [...red].sort().join(" "); // what is drawn red, for people and tests alike
  }
  const counts = { ok: 0, bad: 0, warn: 0 };
  for (const node of state.status.keys()) {
    const t = nodeTone(node);
    if (t in counts) counts[t] += 1;
  }
  const set = (id, value) => { const node = document.querySelector(`#${id} .value`); if (node) node.textContent = value; };
  set("stat-ok", counts.ok);
  set("stat-bad", counts.bad);
  set("stat-warn", counts.warn);
  set("stat-alerts", state.groups.length); // a card each: one fault that four oracles report is one alert
}

function drawing(sector, net, nodes) {
  // a sector without a drawing of its model: its on-chain nodes on a circle, dependencies as edges
  const assets = items(net?.nodes ?? []);
  if (assets.length) {
    return {
      nodes: assets.map((n, i) => {
        const id = String(n.id ?? n.asset ?? n.name ?? i);
        const marker = Boolean(n.marker);
        return {
          data: { id, label: marker ? id : "", anchor: n.anchor ?? null, kind: n.kind ?? "", marker, district: n.district ?? "",
            tone: "unknown", colour: COLOURS.unknown },
          position: { x: Number(n.x ?? 0), y: Number(n.y ?? 0) }, // screen order already: north at the top
        };
      }),
      edges: items(net.edges ?? []).map((e, i) => ({
        data: { id: String(e.id ?? `e${i}`), source: String(e.source), target: String(e.target), anchor: e.anchor ?? null,
          tone: "unknown", colour: "#3b4d60" },
      })),
      preset: true,
    };
  }
  const mine = nodes.filter((n) => n.sector === sector);
  const ids = new Set(mine.map((n) => n.node));
  return {
    nodes: mine.map((n) => ({ data: { id: n.node, label: n.node, anchor: n.node, kind: n.kind ?? "", marker: true,
      tone: "unknown", colour: COLOURS.unknown } })),
    edges: mine.flatMap((n) => (n.depends_on ?? []).filter((d) => ids.has(d))
      .map((d) => ({ data: { id: `${n.node}>${d}`, source: n.node, target: d, anchor: null, tone: "unknown", colour: "#3b4d60" } }))),
    preset: false,
  };
}

function drawSector(sector, box, net, nodes, onPick) {
  const d = drawing(sector, net, nodes);
  const known = new Set(d.nodes.map((n) => n.data.id));
  const edges = d.edges.filter((e) => known.has(e.data.source) && known.has(e.data.target));
  const cy = cytoscape({
    container: box,
    elements: [...d.nodes, ...edges],
    layout: d.preset ? { name: "preset", fit: true, padding: 18 } : { name: "circle", fit: true, padding: 24 },
    userZoomingEnabled: true,
    boxSelectionEnabled: false,
    minZoom: 0.05,
    maxZoom: 4,
    style: [
      { selector: "node", style: {
        "background-color": "data(colour)", width: 18, height: 18, label: "data(label)", color: "#dbe4ec",
        "font-size": 28, "font-weight": 700, "text-valign": "top", "text-margin-y": -6, "border-width": 0,
        "text-outline-color": "#0b1219", "text-outline-width": 3, "min-zoomed-font-size": 6,
      } },
      { selector: "node[?marker]", style: { shape: "round-rectangle", width: 44, height: 44, "border-width": 4, "border-color": "#0b1219" } },
      { selector: 'node[tone = "bad"]', style: { "border-width": 6, "border-color": "#ffd0d0" } },
      { selector: 'node[tone = "bad"][?marker]', style: { width: 64, height: 64 } },
      { selector: "node[!anchor]", style: { width: 12, height: 12, opacity: 0.7 } },
      { selector: "edge", style: { width: 4, "line-color": "data(colour)", "curve-style": "straight" } },
      { selector: 'edge[tone = "bad"]', style: { width: 7 } },
      { selector: ":selected", style: { "border-color": "#4cc2ff", "border-width": 3 } },
    ],
  });
  cy.on("tap", "node", (ev) => onPick(ev.target.data()));
  state.graphs.set(sector, cy);
  box.dataset.drawn = String(d.nodes.length > 0);
  return cy;
}

function alertTime(event) {
  return Date.parse(timeOf(event) ?? "") || event.__seen || 0;
}

/** The alerts as cards: the oracles' verdicts on one node of one kind, each less than GROUP_MS after the
 * one before, are one group (newest first), told by its newest verdict and how many oracles reported it. */
function groupAlerts(alerts) {
  const open = new Map(); // node|kind → the group its next-older alert may join
  const groups = [];
  for (const event of alerts) { // newest first
    const key = `${nodeOf(event)}|${event.kind}`;
    const when = alertTime(event);
    let group = open.get(key);
    if (!group || group.oldest - when > GROUP_MS) {
      group = { latest: event, oracles: new Set(), count: 0, oldest: when };
      open.set(key, group);
      groups.push(group);
    }
    group.oracles.add(event.oracle ?? `#${group.count}`);
    group.count += 1;
    group.oldest = Math.min(group.oldest, when);
  }
  return groups;
}

/** Whether a new alert joins a group already shown (so it raises no second notification). */
function joinsGroup(event) {
  const key = `${nodeOf(event)}|${event.kind}`;
  const when = alertTime(event);
  return state.alerts.some((a) => `${nodeOf(a)}|${a.kind}` === key && Math.abs(when - alertTime(a)) <= GROUP_MS);
}

function alertItem(group) {
  const event = group.latest;
  const node = nodeOf(event);
  const sector = event.sector ?? "";
  const oracles = group.oracles.size;
  return el("li", { class: tone(event.kind) === "bad" ? "bad" : "warn", "data-node": node, "data-kind": event.kind,
    "data-oracles": String(oracles) },
    el("div", { class: "title" }, `${event.kind} · ${node || "—"}`, sector ? el("span", { class: "muted" }, ` (${sector})`) : null,
      ` · ${oracles} oracle${oracles === 1 ? "" : "s"}`),
    el("div", {}, verdictOf(event) || "—"),
    el("div", { class: "meta" }, fmtTime(timeOf(event)), event.block !== undefined ? ` · block ${event.block}` : "",
      group.count > oracles ? ` · ${group.count} verdicts` : ""));
}

function renderAlerts() {
  const list = document.getElementById("alerts");
  state.groups = groupAlerts(state.alerts);
  clear(list, state.groups.length ? state.groups.slice(0, 60).map(alertItem) : el("li", { class: "empty" }, "no alerts"));
}

function renderSteps() {
  const box = document.getElementById("steps");
  clear(box, table(state.steps.slice(0, 40), [
    [(e) => fmtTime(timeOf(e)), "time"],
    [(e) => pill(e.kind, e.kind), "step"],
    [(e) => nodeOf(e) || "—", "node"],
    [(e) => verdictOf(e), "detail"],
  ]));
}

async function loadKinds(kinds, limit) {
  const lists = await Promise.all(kinds.map((kind) => api(`/events?kind=${encodeURIComponent(kind)}&order=desc&limit=${limit}`)
    .then(items).catch(() => [])));
  return lists.flat().sort((a, b) => (b.block ?? 0) - (a.block ?? 0) || (b.log_index ?? 0) - (a.log_index ?? 0));
}

/** An asset: the on-chain node it belongs to, that node's lifecycle, and the verdicts (with their
 * anomaly scores) the oracles recorded about it. */
async function showAsset(asset) {
  const box = document.getElementById("readings");
  const title = document.getElementById("readings-title");
  const node = asset.anchor;
  title.textContent = `${asset.id}${node && node !== asset.id ? ` · node ${node}` : ""}`;
  if (!node) {
    clear(box, el("p", { class: "empty" }, `${asset.id} (${asset.kind}) belongs to no on-chain node: nothing is recorded about it`));
    return;
  }
  await fill(box, async () => {
    const [detail, verdicts] = await Promise.all([
      api(`/nodes/${encodeURIComponent(node)}`),
      loadKinds(["anomaly", "fault", "intrusion"], 30).then((rows) => rows.filter((e) => nodeOf(e) === node)),
    ]);
    const scored = verdicts.map((e) => ({ e, p: payloadOf(e) }));
    return el("div", {},
      el("p", {}, pill(detail.status, detail.status), ` ${detail.kind} · criticality ${detail.criticality} · since ${fmtTime(detail.since)}`),
      el("h3", {}, "Verdicts on its readings"),
      table(scored.slice(0, 15), [
        [({ e }) => fmtTime(timeOf(e)), "time"],
        [({ e }) => pill(e.kind, e.kind), "verdict"],
        [({ p }) => fmtScore(p.score ?? p.anomaly_score ?? p.max_score), "anomaly score", { num: true }],
        [({ p }) => fmtValue(p.metric ?? p.signal ?? p.asset ?? p.sensor ?? p.reason ?? "—"), "on"],
      ]),
      el("h3", {}, "Lifecycle"),
      table(items(detail.timeline ?? []).slice(-8).reverse(), [
        [(s) => fmtTime(s.time), "time"], [(s) => pill(s.status, s.status), "status"], [(s) => s.cause, "cause"],
      ]));
  });
}

async function start() {
  await needToken(main, "The technical view");
  const stats = el("div", { class: "stats" },
    stat("nodes healthy", "—", "ok", "stat-ok"), stat("nodes isolated or alerting", "—", "bad", "stat-bad"),
    stat("nodes in repair", "—", "warn", "stat-warn"), stat("alerts", "—", "info", "stat-alerts"));
  const networks = el("div", { class: "grid two", id: "networks" });
  const notify = notifyButton(el);
  clear(main,
    el("h1", {}, "Technical operations"), stats,
    el("h3", {}, "Sector networks"), networks,
    el("div", { class: "legend" }, el("span", {}, el("i", { class: "ok" }), "active"), el("span", {}, el("i", { class: "warn" }), "repairing"),
      el("span", {}, el("i", { class: "bad" }), "isolated or alert"), el("span", {}, el("i", { class: "unknown" }), "not on-chain")),
    el("div", { class: "grid two" },
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Alerts"), notify), el("ul", { class: "feed scroll", id: "alerts" })),
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Quorum votes")), el("div", { id: "votes" }, el("p", { class: "empty" }, "loading…")))),
    el("div", { class: "grid two" },
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Controller steps")), el("div", { id: "steps", class: "scroll" })),
      el("section", { class: "panel" }, el("header", {}, el("h2", { id: "readings-title" }, "Asset")),
        el("div", { id: "readings" }, el("p", { class: "empty" }, "tap an asset in a network: its node, lifecycle and anomaly scores")))));

  let nodes = [];
  try {
    nodes = items(await api("/nodes?limit=500"));
    for (const n of nodes) state.status.set(n.node, n.status ?? n.status_name ?? "unknown");
  } catch (err) {
    networks.before(errorLine(err));
  }
  let sectors = [];
  try {
    sectors = items(await api("/sectors")).map(sectorOf);
  } catch (err) {
    networks.before(errorLine(err));
    sectors = [...new Set(nodes.map((n) => n.sector))];
  }
  for (const sector of sectors) {
    const box = el("div", { class: "network", id: `net-${sector}`, "data-sector": sector });
    const panel = el("section", { class: "panel" }, el("header", {}, el("h2", {}, sector), el("small", {}, "")), box);
    networks.append(panel);
    let net = null;
    try {
      net = await api(`/sectors/${encodeURIComponent(sector)}/network`);
    } catch (err) {
      panel.querySelector("small").textContent = err.message;
    }
    drawSector(sector, box, net, nodes, (asset) => { showAsset(asset); showReadings(document.getElementById("readings").parentElement, sector, asset.id); });
  }

  state.alerts = await loadKinds(ALERT_KINDS, 40);
  for (const a of state.alerts) {
    const when = Date.parse(timeOf(a) ?? "") || 0;
    const node = nodeOf(a);
    if (node && when > (state.alerted.get(node) ?? 0)) state.alerted.set(node, when);
  }
  state.steps = await loadKinds(STEP_KINDS, 10);
  renderAlerts();
  renderSteps();
  recolour();
  const loadVotes = () => fill(document.getElementById("votes"), async () => table(items(await api("/isolations?limit=20")).sort((a, b) => b.id - a.id), [
    [(p) => String(p.id), "id", { num: true }],
    [(p) => `${p.action} ${p.target}`, "proposal"],
    [(p) => p.sector, "sector"],
    [(p) => pill(p.state, p.state), "state"],
    [(p) => `${p.votes_for}${p.required ? ` / ${p.required}` : ""}${p.votes_not_counted ? ` (+${p.votes_not_counted} not counted)` : ""}`, "votes"],
  ]));
  await loadVotes();
  loaded();

  live((type, data) => {
    if (type === "resync") {
      api("/nodes?limit=500").then((rows) => { for (const n of items(rows)) state.status.set(n.node, n.status); recolour(); }).catch(() => {});
      loadKinds(ALERT_KINDS, 40).then((rows) => { state.alerts = rows; renderAlerts(); recolour(); });
      loadVotes();
    } else if (type === "alert" || (type === "event" && ALERT_KINDS.includes(data.kind))) {
      if (state.alerts.some((a) => a.block === data.block && a.log_index === data.log_index && data.block !== undefined)) return;
      data.__seen = Date.now();
      const known = joinsGroup(data);
      state.alerts.unshift(data);
      state.alerts.length = Math.min(state.alerts.length, 500);
      const node = nodeOf(data);
      if (node) state.alerted.set(node, Date.now());
      renderAlerts();
      recolour();
      if (!known) notifyAlert(`${data.kind} on ${node || data.sector || "the city"}`, verdictOf(data)); // once a group
    } else if (type === "node-status" && data.subject === "node") {
      state.status.set(data.node, data.to);
      if (data.to === "active") state.alerted.delete(data.node); // reintegrated: its alerts are answered
      recolour();
    } else if (type === "vote") {
      loadVotes();
    } else if (type === "event" && STEP_KINDS.includes(data.kind)) {
      state.steps.unshift(data);
      renderSteps();
    }
  }, { dot });
  setInterval(recolour, 30_000);
}

start().catch((err) => main.prepend(errorLine(err)));
