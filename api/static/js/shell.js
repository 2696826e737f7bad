// Every page's frame: the brand, the views, who is signed in, and the token form when nobody is.

import { $, ApiError, clear, el, errorLine, signIn, signOut, token, who } from "./api.js";

export const VIEWS = [
  ["technical", "Technical"],
  ["executive", "Executive"],
  ["regulator", "Regulator"],
  ["public", "Public"],
  ["governance", "Governance"],
  ["notices", "Crisis notices"],
];

/** Builds the header for `view`; returns the live-status dot the page's stream lights. */
export function shell(view) {
  const me = who();
  const dot = el("span", { class: "live-dot", id: "live-dot", title: "live stream" });
  const label = el("span", { class: "label", id: "who-label" },
    me ? `${me.label} · ${me.role}${me.sector ? ` (${me.sector})` : ""}` : (view === "public" ? "public" : "not signed in"));
  const whoBox = el("div", { class: "who" }, dot, label,
    me ? el("button", { class: "secondary", type: "button", id: "sign-out", onclick: async () => { await signOut(); location.reload(); } }, "Sign out") : null);
  const header = el("header", { class: "top" },
    el("div", { class: "bar" }, el("a", { class: "brand", href: "/" }, "QEAIMS", el("span", {}, " ·"), " city"), whoBox),
    el("nav", { class: "views", "aria-label": "views" },
      VIEWS.map(([name, label]) => el("a", { href: `/${name}`, "aria-current": name === view ? "page" : undefined }, label))));
  document.body.prepend(header);
  return dot;
}

/** The token form; resolves once a token was accepted (or at once when one is kept for this tab). */
export function needToken(where, purpose = "This view") {
  if (token()) return Promise.resolve(who());
  return new Promise((resolve) => {
    const input = el("input", { type: "password", name: "token", id: "token", autocomplete: "off", placeholder: "qe_…", required: true });
    const problem = el("div");
    const form = el("form", { class: "panel signin", id: "signin" },
      el("h2", {}, "Sign in"),
      el("p", { class: "muted" }, `${purpose} needs a token (auditor, operator of a sector, or governor). `,
        "`qeaims up` writes development tokens to <home>/api/dev-tokens.json; `qeaims serve token add` makes new ones."),
      el("div", { class: "row" }, el("label", {}, "Token", input), el("button", { type: "submit" }, "Sign in")),
      problem);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(problem);
      try {
        const me = await signIn(input.value);
        form.remove();
        const whoBox = $("#who-label");
        if (whoBox) whoBox.textContent = `${me.label} · ${me.role}${me.sector ? ` (${me.sector})` : ""}`;
        resolve(me);
      } catch (err) {
        clear(problem, errorLine(err instanceof ApiError ? err : new Error(String(err))));
      }
    });
    where.prepend(form);
  });
}
