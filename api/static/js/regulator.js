// Regulator view: the audit trail with filters and paging, one event's verification, "verify all" as a
// job with its result, CSV/JSON export of a period, a reading's inclusion proof to download and check
// offline, and the history of oracle keys and of the council.

import { ALERT_KINDS, API, api, clear, el, errorLine, fill, fmtTime, fmtValue, items, pill, short, table, loaded, who } from "./api.js";
import { live } from "./live.js";
import { needToken, shell } from "./shell.js";

const dot = shell("regulator");
const main = document.getElementById("main");
const KINDS = ["telemetry-root", "anomaly", "fault", "intrusion", "isolation-vote", "isolated", "repair-dispatched", "repaired",
  "reintegrated", "key-rotation", "qkd-alarm", "override", "maintenance", "cascade-analysis", "reroute-plan",
  "isolation-applied", "sensor-quarantine", "vault-write", "vault-read", "vault-shred", "vault-seal", "indicator",
  "countermeasure", "notice"];
const SECTORS = ["electricity", "water", "sewage", "transport", "healthcare", "banking"];

let cursor = null;

function filterQuery(form) {
  const q = new URLSearchParams();
  for (const name of ["sector", "node", "kind"]) {
    const v = form.elements[name].value.trim();
    if (v) q.set(name, v);
  }
  for (const name of ["since", "until"]) {
    const v = form.elements[name].value;
    if (v) q.set(name, new Date(v).toISOString());
  }
  return q;
}

function eventRows(rows, detail) {
  return table(rows, [
    ["block", "block", { num: true }],
    [(e) => fmtTime(e.time ?? e.timestamp), "time"],
    [(e) => e.sector || "—", "sector"],
    [(e) => pill(ALERT_KINDS.includes(e.kind) ? "warn" : "unknown", e.kind), "kind"],
    [(e) => e.node || "—", "node"],
    [(e) => el("code", {}, short(e.oracle ?? "", 4)), "oracle"],
    [(e) => el("div", { class: "row" },
      el("button", { class: "secondary", type: "button", onclick: () => showEvent(e, detail) }, "verify"),
      e.kind === "telemetry-root" && e.payload && e.payload.batch !== undefined
        ? el("button", { class: "secondary", type: "button", "data-proof": `${e.oracle}/${e.payload.batch}`, onclick: () => askProof(e) }, "proof")
        : null), ""],
  ]);
}

async function showEvent(e, detail) {
  const logIndex = e.log_index ?? (typeof e.cursor === "string" ? e.cursor.split(":")[1] : undefined);
  await fill(detail, async () => {
    const ev = await api(`/events/${e.block}/${logIndex}`);
    const b = ev.batch;
    const k = ev.key;
    const rows = [
      { field: "event", value: `${ev.event.kind} · ${ev.event.node || "—"} · ${ev.event.sector}` },
      { field: "oracle", value: `${ev.event.oracle} (seq ${ev.event.seq})` },
      { field: "block / tx", value: `${ev.event.block} · ${ev.event.tx}` },
      { field: "batch", value: b ? `#${b.batch_id}: seq ${b.first_seq}–${b.last_seq}, hybrid signature ${b.signature_bytes} bytes, ${b.verifies ? "verifies" : `does not verify: ${b.reason}`}` : "not in the index" },
      { field: "key epoch", value: k ? `${k.epoch} of ${k.current_epoch}, ${k.valid ? "chain of trust holds" : `untrusted: ${k.reason}`}` : "—" },
    ];
    return el("div", {},
      el("p", {}, pill(ev.verified ? "verified" : "invalid", ev.verified ? "verified: batch signature and key epoch hold" : "does NOT verify"),
        ` block ${e.block}, log ${logIndex}`),
      table(rows, [["field", ""], ["value", ""]]));
  });
}

async function loadEvents(form, box, detail, more) {
  const q = filterQuery(form);
  q.set("limit", window.innerWidth < 700 ? "15" : "40");
  q.set("order", "desc");
  if (more && cursor) q.set("cursor", cursor);
  try {
    const data = await api(`/events?${q}`);
    cursor = data.next_cursor ?? null;
    const rows = items(data);
    const block = eventRows(rows, detail);
    if (more) box.append(block); else clear(box, block);
    document.getElementById("more").classList.toggle("hidden", !cursor);
    const ex = new URLSearchParams(filterQuery(form));
    document.getElementById("export-csv").href = `${API}/events/export?${ex}&format=csv`;
    document.getElementById("export-json").href = `${API}/events/export?${ex}&format=json`;
  } catch (err) {
    clear(box, errorLine(err));
  }
}

async function verifyAll(button, out) {
  button.disabled = true;
  clear(out, el("p", {}, "verifying the whole history…"));
  try {
    let job = await api("/audit/verifications", { method: "POST", body: {} });
    const id = job.id;
    while (job.status === "running") {
      await new Promise((r) => setTimeout(r, 1000));
      job = await api(`/audit/verifications/${encodeURIComponent(id)}`);
      const p = job.progress;
      if (p && job.status === "running") clear(out, el("p", {}, `${p.step}… ${p.done}${p.total ? ` / ${p.total}` : ""}`));
    }
    if (job.status === "failed" || !job.result) {
      clear(out, el("p", { id: "verify-result", class: "error", role: "alert" }, job.error ?? "the verification failed"));
      return;
    }
    const r = job.result;
    const invalid = items(r.invalid);
    clear(out, el("div", { class: "stats", id: "verify-result", "data-ok": String(r.ok) },
      el("div", { class: `stat ${r.ok ? "ok" : "bad"}` }, el("div", { class: "value" }, r.ok ? "✓ verifies" : "✗ fails"), el("div", { class: "label" }, "the whole history")),
      el("div", { class: "stat info" }, el("div", { class: "value" }, fmtValue(r.events)), el("div", { class: "label" }, "events checked")),
      el("div", { class: "stat info" }, el("div", { class: "value" }, fmtValue(r.batches)), el("div", { class: "label" }, `batches from ${r.oracles} oracles`)),
      el("div", { class: `stat ${invalid.length ? "bad" : "ok"}` }, el("div", { class: "value" }, String(invalid.length)), el("div", { class: "label" }, "invalid"))),
    el("p", { class: "muted" }, "anchor (keep it elsewhere, pass it back later): ", el("code", {}, r.anchor)),
    invalid.length ? table(invalid.slice(0, 50)) : null,
    items(r.problems).length ? table(items(r.problems).slice(0, 50)) : null);
  } catch (err) {
    clear(out, errorLine(err));
  } finally {
    button.disabled = false;
  }
}

/** Fills the proof form with the first reading of a telemetry-root event's batch and asks for its proof. */
function askProof(e) {
  const form = document.getElementById("proof-form");
  form.elements.oracle.value = e.oracle;
  form.elements.ref.value = `${e.payload.batch}:0`;
  form.scrollIntoView({ behavior: "smooth", block: "center" });
  form.requestSubmit();
}

async function proof(form, out) {
  const oracle = form.elements.oracle.value.trim();
  const ref = form.elements.ref.value.trim();
  await fill(out, async () => {
    const data = await api(`/proofs/${encodeURIComponent(oracle)}/${encodeURIComponent(ref)}`);
    const ok = data.ok ?? data.verified;
    const text = JSON.stringify(data, null, 2);
    const href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    return el("div", {},
      el("p", { id: "proof-result", "data-ok": String(Boolean(ok)) }, pill(ok ? "verified" : "invalid", ok ? "the reading is in its anchored root" : "the proof does NOT verify"),
        ok ? ` · ${data.sector} · block ${data.block}` : ` · ${data.reason ?? ""}`),
      el("a", { class: "button", href, download: `proof-${ref.replace(":", "-")}.json`, id: "proof-download" }, "Download proof (JSON)"),
      el("p", { class: "muted" }, "check it offline with scripts/check_proof.py"));
  });
}

async function start() {
  await needToken(main, "The regulator view");
  const form = el("form", { class: "row", id: "filters" },
    el("label", {}, "Sector", el("select", { name: "sector" }, el("option", { value: "" }, "all"), SECTORS.map((s) => el("option", {}, s)))),
    el("label", {}, "Kind", el("select", { name: "kind" }, el("option", { value: "" }, "all"), KINDS.map((k) => el("option", {}, k)))),
    el("label", {}, "Node", el("input", { name: "node", placeholder: "e.g. feeder-3" })),
    el("label", {}, "Since", el("input", { name: "since", type: "datetime-local" })),
    el("label", {}, "Until", el("input", { name: "until", type: "datetime-local" })),
    el("button", { type: "submit" }, "Filter"));
  const events = el("div", { id: "events" });
  const detail = el("div", { id: "event-detail" });
  const more = el("button", { class: "secondary hidden", id: "more", type: "button", onclick: () => loadEvents(form, events, detail, true) }, "Older events");
  const verifyOut = el("div", { id: "verify" });
  const verifyButton = el("button", { type: "button", id: "verify-all", onclick: () => verifyAll(verifyButton, verifyOut) }, "Verify all");
  const proofForm = el("form", { class: "row", id: "proof-form" },
    el("label", {}, "Oracle address", el("input", { name: "oracle", placeholder: "0x…", required: true })),
    el("label", {}, "Reading (batch:index)", el("input", { name: "ref", placeholder: "12:3", required: true })),
    el("button", { type: "submit" }, "Get proof"));
  const proofOut = el("div", { id: "proof" });
  const keys = el("div", { id: "keys" });
  const council = el("div", { id: "council" });
  clear(main,
    el("h1", {}, "Regulator"),
    el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Audit trail ", el("small", { id: "new-events" }, "")),
      el("div", { class: "row" }, el("a", { class: "button secondary", id: "export-csv", href: `${API}/events/export?format=csv`, download: "events.csv" }, "Export CSV"),
        el("a", { class: "button secondary", id: "export-json", href: `${API}/events/export?format=json`, download: "events.json" }, "Export JSON"))),
    el("details", { class: "filters", open: window.innerWidth >= 700 }, el("summary", {}, "Filters"), form),
    events, more, detail),
    el("div", { class: "grid two" },
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Verify the whole history"), verifyButton), verifyOut),
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Reading inclusion proof")), proofForm, proofOut)),
    el("div", { class: "grid two" },
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Oracle keys")), keys),
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Council history")), council)));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); loadEvents(form, events, detail, false); });
  proofForm.addEventListener("submit", (ev) => { ev.preventDefault(); proof(proofForm, proofOut); });
  await Promise.all([
    loadEvents(form, events, detail, false),
    fill(keys, async () => table(items(await api("/oracles?limit=200")), [
      [(o) => el("code", {}, short(o.address, 4)), "oracle"],
      [(o) => o.sector, "sector"],
      [(o) => pill(o.status, o.status), "status"],
      [(o) => o.key_epoch, "key epoch", { num: true }],
      [(o) => pill(o.key_trusted ? "valid" : "invalid", o.key_trusted ? "trusted" : "untrusted"), "key"],
      [(o) => el("code", {}, short(o.key_fingerprint ?? "—", 4)), "fingerprint"],
    ])),
    fill(council, async () => table(items(await api("/governance/proposals?limit=50")), [
      [(p) => String(p.id), "id", { num: true }],
      [(p) => p.description, "what"],
      [(p) => pill(p.state, p.state), "state"],
      [(p) => p.approvals, "approvals", { num: true }],
    ])),
  ]);
  loaded();
  let fresh = 0;
  const badge = document.getElementById("new-events");
  live((type, data) => {
    if (type === "event") {
      fresh += 1;
      badge.textContent = `${fresh} new since loaded`;
    } else if (type === "audit-progress" && data.status === "running" && !document.getElementById("verify-result")) {
      // every auditor's page hears a job's progress, whoever started it
      clear(document.getElementById("verify"), el("p", {}, `${data.step}… ${data.done}${data.total ? ` / ${data.total}` : ""}`));
    }
  }, { dot, topics: who()?.role === "operator" ? ["event"] : ["event", "audit-progress"] }); // not an operator's topic
}

start().catch((err) => main.prepend(errorLine(err)));
