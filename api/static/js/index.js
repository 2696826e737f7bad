// The landing page: sign in once for this tab, then pick a view. The public view needs nothing.

import { clear, el, errorLine, loaded, who } from "./api.js";
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

async function start() {
  clear(main, el("h1", {}, "City operations dashboard"), cards());
  loaded();
  if (!who()) {
    const me = await needToken(main, "Every view but the public one");
    main.prepend(el("p", { class: "notice-ok", id: "signed-in" }, `signed in as ${me.label} (${me.role})`));
  }
}

start().catch((err) => main.prepend(errorLine(err)));
