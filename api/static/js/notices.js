// Crisis communications: an operator posts a notice to the public or to subscribed providers
// (hospitals, banks); its hash is recorded on-chain. Every notice in the list is checked in this page
// (SHA-256 of its text against the hash on-chain, notice_check.js): verified, or NOT VERIFIED in red.

import { api, clear, el, errorLine, fill, fmtAgo, items, who, loaded } from "./api.js";
import { live } from "./live.js";
import { checkNotice } from "./notice_check.js";
import { needToken, shell } from "./shell.js";

const dot = shell("notices");
const main = document.getElementById("main");
const SECTORS = ["electricity", "water", "sewage", "transport", "healthcare", "banking"];

function noticeItem(n) {
  const check = checkNotice(n);
  return el("li", { class: check.verified ? "ok" : "bad", "data-verified": String(check.verified), "data-id": n.id ?? "" },
    el("div", { class: "title" }, `${n.audience ?? "public"} · ${n.sector ?? ""}${n.district ? ` · ${n.district}` : ""} `,
      check.verified ? el("span", { class: "notice-ok" }, "✓ verified") : el("span", { class: "notice-bad" }, "✗ NOT VERIFIED")),
    el("div", {}, n.text ?? ""),
    check.verified ? null : el("div", { class: "notice-bad" }, check.reason),
    el("div", { class: "meta" }, `${fmtAgo(n.created)} · by ${n.author} · sha-256 `, el("code", {}, check.computed.slice(0, 16)), "…"));
}

async function start() {
  await needToken(main, "Crisis communications");
  const me = who();
  const list = el("ul", { class: "feed", id: "notice-list" });
  const out = el("div", { id: "post-result" });
  const reload = () => fill(list, async () => {
    const rows = items(await api("/notices?limit=100"));
    return rows.length ? rows.map(noticeItem) : el("li", { class: "empty" }, "no notice yet");
  });
  const sector = el("select", { name: "sector", id: "notice-sector" },
    SECTORS.map((s) => el("option", { selected: me && me.sector === s }, s)));
  if (me && me.sector) sector.disabled = true;
  const form = el("form", { id: "notice-form" },
    el("div", { class: "row" },
      el("label", {}, "To", el("select", { name: "audience", id: "audience" },
        el("option", { value: "public" }, "the public"), el("option", { value: "healthcare" }, "hospitals"), el("option", { value: "banking" }, "banks"))),
      el("label", {}, "Sector", sector),
      el("label", {}, "District", el("input", { name: "district", id: "district", required: true, maxlength: 64, placeholder: "e.g. North-West" }))),
    el("label", {}, "Message", el("textarea", { name: "text", id: "notice-text", maxlength: 2000, required: true,
      placeholder: "What is happening, where, and what people should do" })),
    el("div", { class: "row" }, el("button", { type: "submit", id: "post-notice" }, "Post and record on-chain")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {
      audience: form.elements.audience.value, sector: sector.value,
      district: form.elements.district.value.trim(), text: form.elements.text.value.trim(),
    };
    clear(out, el("p", {}, "recording…"));
    try {
      await api("/notices", { method: "POST", body });
      clear(out, el("p", { class: "notice-ok" }, "posted and recorded on-chain"));
      form.elements.text.value = "";
      await reload();
    } catch (err) {
      clear(out, errorLine(err));
    }
  });
  clear(main,
    el("h1", {}, "Crisis communications"),
    el("div", { class: "grid two" },
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Post a notice")),
        me && me.role !== "operator" ? el("p", { class: "muted" }, "only a sector's operator posts notices; you can read and check them") : null,
        form, out),
      el("section", { class: "panel" }, el("header", {}, el("h2", {}, "Notices"), el("small", {}, "checked in this page")), list)));
  await reload();
  loaded();
  live((type) => { if (type === "resync" || type === "notice") reload(); }, { dot, topics: ["notice"] });
}

start().catch((err) => main.prepend(errorLine(err)));
