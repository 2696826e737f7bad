// Governance and manual override: the council's proposals with their approvals, and the governor's
// actions (propose force-isolate / force-reintegrate / set-cap, approve, queue, execute, emergency).
// Every action goes through a confirmation dialog that asks the governor's passphrase: the server
// unlocks that governor's own keystore with it and acts through the council, as `qeaims gov` does, so
// a token alone can read but never approve.

import { api, clear, el, errorLine, fill, items, pill, table, who, loaded } from "./api.js";
import { live } from "./live.js";
import { needToken, shell } from "./shell.js";

const dot = shell("governance");
const main = document.getElementById("main");

// the council's routes (api/routers/governance.py)
const ROUTES = {
  list: "/governance/proposals?limit=100",
  propose: "/governance/proposals",
  act: (id, action) => `/governance/proposals/${encodeURIComponent(id)}/${action}`,
};
const ACTIONS = [
  ["force-isolate", "Force-isolate a node"],
  ["force-reintegrate", "Force-reintegrate a node"],
  ["set-cap", "Set the isolation cap"],
];

/** The confirmation step: what will happen, in words, and the governor's passphrase. */
function confirm(summary, extra = []) {
  return new Promise((resolve) => {
    const pass = el("input", { type: "password", name: "passphrase", id: "passphrase", autocomplete: "current-password", required: true });
    const dialog = el("dialog", { id: "confirm" },
      el("form", { method: "dialog" },
        el("h2", {}, "Confirm"),
        el("p", {}, summary),
        extra,
        el("label", {}, `Passphrase of governor ${who()?.governor ?? ""}`, pass),
        el("div", { class: "actions" },
          el("button", { class: "secondary", value: "cancel", type: "submit", formnovalidate: true }, "Cancel"),
          el("button", { value: "ok", type: "submit", id: "confirm-ok" }, "Sign and send"))));
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const ok = dialog.returnValue === "ok" && pass.value;
      resolve(ok ? pass.value : null);
      dialog.remove();
    });
    dialog.showModal();
    pass.focus();
  });
}

async function act(out, summary, path, body, reload) {
  const passphrase = await confirm(summary);
  if (passphrase === null) return;
  clear(out, el("p", {}, "signing and sending…"));
  try {
    const result = await api(path, { method: "POST", body: { ...body, passphrase } });
    clear(out, el("p", { class: "notice-ok", id: "action-result", "data-proposal": result?.id, "data-state": result?.state },
      `done: ${summary}`, result ? ` — proposal ${result.id} is now ${result.state} (${result.approvals}/${result.threshold} approvals)` : ""));
  } catch (err) {
    clear(out, errorLine(err));
  }
  await reload();
  setTimeout(reload, 1500); // the list reads the API's index, a moment behind the transaction
}

function proposalTable(rows, out, reload) {
  const mine = who();
  const canAct = mine && mine.role === "governor";
  const button = (label, action, p, cls = "secondary") => el("button", {
    type: "button", class: cls, "data-action": action, "data-proposal": p.id,
    onclick: () => act(out, `${label} proposal ${p.id} (${p.description ?? ""})`, ROUTES.act(p.id, action), {}, reload),
  }, label);
  // what may come next in the council's life of a proposal (chain/governance.py STATES)
  // (queued: the council's delay runs; the list is read again until it is ready to execute)
  const next = { pending: [["Approve", "approve"]], succeeded: [["Queue", "queue"]], ready: [["Execute", "execute"]] };
  return table(rows, [
    [(p) => String(p.id), "id", { num: true }],
    [(p) => p.description, "what"],
    [(p) => pill(p.state, p.state), "state"],
    [(p) => String(p.approvals), "approvals", { num: true }],
    [(p) => (canAct && next[p.state]
      ? el("div", { class: "row" }, next[p.state].map(([label, action]) => button(label, action, p, action === "execute" ? "" : "secondary")))
      : (p.state === "queued" ? el("small", { class: "muted" }, "waiting out the council's delay…") : "—")), "act"],
  ]);
}

async function start() {
  await needToken(main, "Governance");
  const out = el("div", { id: "result" });
  const list = el("div", { id: "proposals" }, el("p", { class: "empty" }, "loading…"));
  let waiting = null;
  const reload = () => fill(list, async () => {
    const data = await api(ROUTES.list);
    const rows = items(data).slice().sort((a, b) => Number(b.id) - Number(a.id));
    clearTimeout(waiting);
    if (rows.some((p) => p.state === "queued")) waiting = setTimeout(reload, 2000); // ready is a matter of time, not of an event
    return proposalTable(rows, out, reload);
  });
  const action = el("select", { name: "action", id: "action" }, ACTIONS.map(([v, l]) => el("option", { value: v }, l)));
  const node = el("input", { name: "node", id: "node", placeholder: "e.g. feeder-3" });
  const cap = el("input", { name: "cap", id: "cap", type: "number", min: 1, max: 10000, placeholder: "2500 = 25 %" });
  const reason = el("input", { name: "reason", id: "reason", maxlength: 32, pattern: "[ -~]{1,32}", placeholder: "why, on-chain (≤ 32 ASCII)" });
  const nodeLabel = el("label", {}, "Node", node);
  const capLabel = el("label", { class: "hidden" }, "Cap (basis points)", cap);
  action.addEventListener("change", () => {
    nodeLabel.classList.toggle("hidden", action.value === "set-cap");
    capLabel.classList.toggle("hidden", action.value !== "set-cap");
  });
  const form = el("form", { class: "row", id: "propose" },
    el("label", {}, "Override", action), nodeLabel, capLabel, el("label", {}, "Reason", reason),
    el("button", { type: "submit", id: "propose-button" }, "Propose"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { kind: action.value, reason: reason.value || "dashboard override" };
    let summary;
    if (action.value === "set-cap") {
      body.cap = Number(cap.value);
      summary = `Propose to set the isolation cap to ${(body.cap / 100).toFixed(2)} %`;
    } else {
      body.node = node.value.trim();
      summary = `Propose to ${action.value.replace("-", " ")} node ${body.node}`;
    }
    act(out, summary, ROUTES.propose, body, reload);
  });
  const me = who();
  clear(main,
    el("h1", {}, "Governance and manual override"),
    me && me.role !== "governor" ? el("p", { class: "muted", id: "read-only" }, `You read the council as ${me.label} (${me.role}); only a governor's token may propose or approve.`) : null,
    me && me.role === "governor" ? el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Propose an override")),
      el("p", { class: "muted" }, "Goes through the council: other governors approve, then it is queued, and executed after the delay."),
      form, out) : out,
    el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Proposals")), list));
  await reload();
  loaded();
  live((type) => { if (type === "proposal" || type === "resync") reload(); }, { dot, topics: ["proposal"] });
}

start().catch((err) => main.prepend(errorLine(err)));
