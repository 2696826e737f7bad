// The live stream: one EventSource on /api/v1/stream (the session cookie carries the token), reconnecting
// by itself; every message is stamped with Date.now() on arrival (window.__qeaimsLive) so the browser test
// can measure chain → page latency, and alerts raise a browser notification when the user allowed them.

// the stream's topics (api/live/messages.py); the stream needs a token, so the public page polls instead
const TYPES = ["event", "alert", "node-status", "vote", "proposal", "notice", "audit-progress", "rewound", "lagged"];
const KEEP = 2000;

window.__qeaimsLive = window.__qeaimsLive || [];

function record(type, raw, id) {
  const at = Date.now();
  let data = raw;
  try { data = JSON.parse(raw); } catch { /* plain text */ }
  const entry = { type, id, at, data };
  window.__qeaimsLive.push(entry);
  if (window.__qeaimsLive.length > KEEP) window.__qeaimsLive.splice(0, window.__qeaimsLive.length - KEEP);
  return entry;
}

/** Opens the stream; `on(type, data, entry)` for every message; `dot` shows whether it is connected.
 *
 * A browser keeps at most six HTTP/1.1 connections to one host, and each open stream holds one: a tab
 * in the background closes its stream, so a few dashboard tabs never starve the one in front (its
 * fetches would wait for a free connection). Back in front it reopens the stream and tells the page
 * `on("resync")`, since what happened meanwhile was not heard. */
export function live(on, { topics, dot } = {}) {
  let source = null;
  let retry = 1000;
  let hiddenAt = null;
  if (!sessionStorage.getItem("qeaims.token")) return () => {};
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      hiddenAt = Date.now();
      if (source) source.close();
      source = null;
      if (dot) dot.className = "live-dot";
    } else if (hiddenAt !== null) {
      hiddenAt = null;
      open();
      try { on("resync", null, null); } catch (err) { console.error(err); }
    }
  });
  const open = () => {
    if (document.hidden) return;
    const query = new URLSearchParams();
    if (topics) query.set("topics", topics.join(","));
    const qs = query.toString();
    source = new EventSource(`/api/v1/stream${qs ? `?${qs}` : ""}`, { withCredentials: true });
    source.onopen = () => { retry = 1000; if (dot) dot.className = "live-dot on"; };
    source.onerror = () => {
      if (dot) dot.className = "live-dot off";
      if (source && source.readyState === EventSource.CLOSED) {
        setTimeout(open, retry);
        retry = Math.min(retry * 2, 30_000);
      }
    };
    const handle = (type) => (msg) => {
      const entry = record(type, msg.data, msg.lastEventId);
      try { on(type, entry.data, entry); } catch (err) { console.error(err); }
    };
    source.onmessage = handle("message");
    for (const type of TYPES) source.addEventListener(type, handle(type));
  };
  open();
  return () => source && source.close();
}

export function notificationsAllowed() {
  return "Notification" in window && Notification.permission === "granted";
}

/** A button that asks for notification permission (browsers only ask after a click). */
export function notifyButton(el) {
  if (!("Notification" in window) || Notification.permission !== "default") return null;
  return el("button", {
    class: "secondary", type: "button",
    onclick: async (ev) => { await Notification.requestPermission(); ev.target.remove(); },
  }, "Notify me of alerts");
}

export function notifyAlert(title, body) {
  if (!notificationsAllowed()) return;
  try {
    new Notification(title, { body, tag: "qeaims-alert" });
    (window.__qeaimsNotified = window.__qeaimsNotified || []).push({ title, at: Date.now() });
  } catch { /* some phones only notify from a service worker */ }
}
