// The landing page: sign in once for this tab, then pick a view. The public view needs nothing.

import { api, clear, el, errorLine, fill, items, loaded, stat, who } from "./api.js";
import { needToken, shell, VIEWS } from "./shell.js";

const BLURBS = {
  technical: "Sector networks live, alerts with their verdicts, quorum votes, controller steps, readings.",
  executive: "KPIs beside the brief's targets, availability per sector over time, incidents.",
  regulator: "Audit trail, verify all, exports, inclusion proofs, key and council history.",
  public: "Service status per sector and district, incidents in plain words. No sign-in.",
  governance: "Council proposals and manual override, confirmed with the governor's passphrase.",
  notices: "Crisis messages to the public, hospitals and banks, verified in the page.",
};

shell("");
const main = document.getElementById("main");

function cards() {
  return el("div", { class: "views-list" }, VIEWS.map(([name, label]) => el("a", { href: `/${name}`, id: `go-${name}` },
    el("div", { class: "panel" }, el("h2", {}, label), el("p", { class: "muted" }, BLURBS[name])))));
}

/** The city at a glance, from the public resources (no token needed). */
async function glance() {
  const [status, incidents] = await Promise.all([api("/public/status", { auth: false }), api("/public/incidents", { auth: false })]);
  const rows = items(status).filter((r) => typeof r.availability === "number");
  const sectors = new Set(rows.map((r) => r.sector));
  const normal = rows.filter((r) => r.state === "ok").length;
  const open = items(incidents).length;
  return el("div", { class: "stats", id: "glance" },
    stat("sectors reporting", String(sectors.size), sectors.size ? "info" : "warn"),
    stat("districts served normally", `${normal} / ${rows.length}`, normal === rows.length ? "ok" : "warn"),
    stat("incidents in progress", String(open), open ? "bad" : "ok"));
}

async function start() {
  const summary = el("div", {});
  clear(main, el("h1", {}, "City operations dashboard"), summary, cards());
  await fill(summary, glance);
  loaded();
  if (!who()) {
    const me = await needToken(main, "Every view but the public one");
    main.prepend(el("p", { class: "notice-ok", id: "signed-in" }, `signed in as ${me.label} (${me.role})`));
  }
}

start().catch((err) => main.prepend(errorLine(err)));
