// The page's side of the API: the token (sessionStorage), fetch with it, the one-sentence errors, and
// small DOM helpers that only ever set text (never innerHTML), so nothing the API returns can run as code.

export const API = "/api/v1";
const TOKEN_KEY = "qeaims.token";
const WHO_KEY = "qeaims.who";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function who() {
  try {
    return JSON.parse(sessionStorage.getItem(WHO_KEY) || "null");
  } catch {
    return null;
  }
}

/** fetch `API + path`; JSON in and out; a non-2xx becomes an ApiError carrying the API's one sentence. */
export async function api(path, { method = "GET", body, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  const tok = token();
  if (auth && tok) headers.Authorization = `Bearer ${tok}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(API + path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "the API does not answer: is `qeaims serve` (or `qeaims up`) running?");
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const data = await res.json();
      if (data && typeof data.error === "string") message = data.error;
    } catch { /* not JSON: keep the status line */ }
    throw new ApiError(res.status, message);
  }
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

/** Keeps the token for this tab and trades it for the GET-only session cookie the live stream needs. */
export async function signIn(tok) {
  sessionStorage.setItem(TOKEN_KEY, tok.trim());
  try {
    const me = await api("/session", { method: "POST" });
    sessionStorage.setItem(WHO_KEY, JSON.stringify(me));
    return me;
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(WHO_KEY);
    throw err;
  }
}

export async function signOut() {
  try { await api("/session", { method: "DELETE" }); } catch { /* forgotten either way */ }
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(WHO_KEY);
}

/** A list response: `{items: [...]}` or a bare array. */
export function items(data) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data.items)) return data.items;
  return [];
}

/** el("td", {class: "num"}, "text", child, ...) — text children become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

export function $(selector) {
  return document.querySelector(selector);
}

/** The API's sentence, shown where the data would have been. */
export function errorLine(err) {
  const text = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  return el("p", { class: "error", role: "alert" }, text);
}

export function showError(where, err) {
  clear(where, errorLine(err));
}

/** Runs `load` into `where`, showing its error sentence instead if it fails. */
export async function fill(where, load) {
  try {
    const content = await load();
    if (content !== undefined) clear(where, content);
  } catch (err) {
    showError(where, err);
  }
}

// --- formatting ---------------------------------------------------------------------------------

export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return new Date(value > 1e12 ? value : value * 1000);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Today's times as 15:56:58, older ones with their date. */
export function fmtTime(value) {
  const date = toDate(value);
  if (!date) return "—";
  if (date.toDateString() === new Date().toDateString()) return date.toLocaleTimeString([], { hour12: false });
  return date.toLocaleString([], { dateStyle: "short", timeStyle: "short", hour12: false });
}

export function fmtAgo(value) {
  const date = toDate(value);
  if (!date) return "—";
  const s = Math.round((Date.now() - date.getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return fmtTime(value);
}

export function fmtNum(value, digits = 2) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString();
  return value.toLocaleString([], { maximumFractionDigits: digits });
}

/** A share (0..1) as percent with `digits` decimals (one unless a figure needs its nines): "99.9 %",
 * "100 %" only when whole. A share below 1 never reads 100 %: 0.99996 reads "99.9 %" (the nines are the
 * point of an uptime figure, and rounding one up would claim a service never lost). */
export function fmtPct(value, digits = 1) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  if (value >= 1) return "100 %";
  const scale = 10 ** digits;
  const shown = Math.min(Math.round(value * 100 * scale), 100 * scale - 1) / scale;
  return `${shown.toFixed(digits)} %`;
}

/** The decimals a target share needs to be told apart from its neighbours: 0.99998 → 3, 0.99 → 1. */
export function pctDigits(share) {
  if (typeof share !== "number" || share >= 1 || share <= 0) return 1;
  const text = (share * 100).toFixed(6).replace(/0+$/, "");
  return Math.min(4, Math.max(1, text.length - text.indexOf(".") - 1));
}

export function short(text, keep = 6) {
  const s = String(text ?? "");
  return s.length > keep * 2 + 3 ? `${s.slice(0, keep + (s.startsWith("0x") ? 2 : 0))}…${s.slice(-keep)}` : s;
}

/** A measured value or score: three decimals in the usual range, three significant digits beyond it
 * (an anomaly score of 346154882017.73 reads "3.46e11", not a dozen digits that say nothing more). */
export function fmtScore(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return fmtNum(value, 3);
  const size = Math.abs(value);
  if (Number.isInteger(value) && size < 1e9) return fmtNum(value);
  if (size >= 1e6 || (size > 0 && size < 1e-3)) return value.toExponential(2).replace("e+", "e");
  return fmtNum(value, 3);
}

export function fmtValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return fmtScore(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** The colour class of a status word, whatever resource it comes from. */
export function tone(status) {
  const s = String(status ?? "").toLowerCase();
  if (/^(active|ok|operational|normal|up|verified|executed|done|healthy|met|restored|reintegrated|true|pass|passed|valid)$/.test(s)) return "ok";
  if (/(isolat|down|outage|fail|invalid|not.?verified|bad|critical|fault|intrusion|alarm|false|missed|rejected|cancel|expired|removed)/.test(s)) return "bad";
  if (/(suspect|degraded|quarantin|warn|partial|pending|queued|proposed|voting|open|anomal|repair|maintenance|running)/.test(s)) return "warn";
  if (/(approved|succeeded|info|ready)/.test(s)) return "info";
  return "unknown";
}

export function pill(status, text) {
  return el("span", { class: `pill ${tone(status)}` }, text ?? String(status ?? "unknown"));
}

/** A table of `rows`; `columns` = [[key or fn, label, {num, fmt}]...], or every key of the first row. */
export function table(rows, columns) {
  if (!rows.length) return el("p", { class: "empty" }, "nothing yet");
  const cols = columns || Object.keys(rows[0]).map((k) => [k, k.replaceAll("_", " ")]);
  const head = el("tr", {}, cols.map(([, label]) => el("th", {}, label)));
  const body = rows.map((row) => el("tr", {}, cols.map(([key, , opts = {}]) => {
    const raw = typeof key === "function" ? key(row) : row[key];
    const cell = raw instanceof Node ? raw : (opts.fmt ? opts.fmt(raw, row) : fmtValue(raw));
    return el("td", { class: opts.num ? "num" : undefined }, cell);
  })));
  return el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, body)));
}

/** A stat tile: a big number and what it counts. */
export function stat(label, value, toneClass = "info", id) {
  return el("div", { class: `stat ${toneClass}`, id }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
}

/** The sector a list item names, whatever the field is called. */
export function sectorOf(item) {
  return typeof item === "string" ? item : (item.sector ?? item.name ?? item.id ?? "");
}

export function download(name, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const ALERT_KINDS = ["anomaly", "fault", "intrusion", "qkd-alarm", "sensor-quarantine", "countermeasure"];
export const STEP_KINDS = ["cascade-analysis", "isolation-applied", "reroute-plan", "repair-dispatched", "repaired", "reintegrated", "isolated"];

/** Marks the page as holding its first data (people see the numbers; the browser test waits for it). */
export function loaded() {
  document.body.dataset.loaded = "true";
}
