// How sessions look: a row of the Sessions list, kept and refilled in place, and the summary of the open
// session. Values from the API are only ever set as text.

import { el, exactTime, relativeTime } from "../format.js";

export function setText(node, value) {
  if (node.textContent !== value) node.textContent = value;
}

/** An empty row for a session: a link (keyboard, middle click, a new tab), filled by `fillRow`. */
export function createRow(id) {
  return el(
    "li",
    { class: "session", "data-session-id": id },
    el(
      "a",
      { class: "session-row glass", "data-session": id },
      el(
        "span",
        { class: "session-who" },
        el("span", { class: "session-names" }, el("strong", { class: "session-client" }), el("span", { class: "session-server" })),
        el("code", { class: "session-id" }),
      ),
      el("span", { class: "session-when" }),
      el("span", { class: "session-counts" }),
    ),
  );
}

/** Show a session's latest summary in its row (also refreshes the relative times). */
export function fillRow(row, session) {
  if (!row || !session) return;
  const first = Date.parse(session.first_seen);
  const last = Date.parse(session.last_seen);
  const client = session.user_source || "Unknown client";
  const q = (sel) => row.querySelector(sel);
  q("a").href = sessionHref(session.session_id);
  setText(q(".session-client"), client);
  setText(q(".session-server"), session.server ? `→ ${session.server}` : "");
  q(".session-server").hidden = !session.server;
  setText(q(".session-id"), session.session_id);
  const when = q(".session-when");
  setText(when, `active ${relativeTime(last)} · spans ${spanText(last - first)}`);
  when.title = `${exactTime(first)} – ${exactTime(last)}`;
  fillCounts(q(".session-counts"), session);
  q("a").setAttribute(
    "aria-label",
    `${client}${session.server ? ` to ${session.server}` : ""}, last active ${relativeTime(last)}, ` +
      `${countsText(session)}, session ${session.session_id}`,
  );
}

/** The open session's facts and counts; only its id while its summary is unknown. */
export function summary(id, session) {
  if (!session) {
    return [el("dl", { class: "facts" }, el("dt", { text: "Session" }), el("dd", {}, el("code", { class: "selectable", text: id })))];
  }
  const first = Date.parse(session.first_seen);
  const last = Date.parse(session.last_seen);
  const row = (label, ...value) => [el("dt", { text: label }), el("dd", {}, ...value)];
  const counts = el("div", { class: "session-counts" });
  fillCounts(counts, session);
  return [
    el(
      "dl",
      { class: "facts" },
      ...row("Client", session.user_source || "unknown"),
      ...row("Server", session.server || "unknown"),
      ...row("Session", el("code", { class: "selectable", text: id })),
      ...row("Started", el("time", { datetime: session.first_seen, title: exactTime(first), text: relativeTime(first) })),
      ...row("Last active", el("time", { datetime: session.last_seen, title: exactTime(last), text: relativeTime(last) })),
      ...row("Span", spanText(last - first)),
    ),
    counts,
  ];
}

function fillCounts(node, session) {
  const count = (n, one, many, kind) =>
    el("span", { class: `session-count${n > 0 ? ` has-${kind}` : ""}`, "data-kind": kind }, el("strong", { text: n.toLocaleString() }), ` ${n === 1 ? one : many}`);
  node.replaceChildren(
    count(session.events, "event", "events", "events"),
    count(session.errors, "error", "errors", "errors"),
    count(session.pending, "running", "running", "pending"),
  );
}

function countsText(s) {
  return `${s.events} ${s.events === 1 ? "event" : "events"}, ${s.errors} ${s.errors === 1 ? "error" : "errors"}, ${s.pending} running`;
}

/** How long a session has lasted, in words. */
function spanText(ms) {
  if (!(ms >= 60_000)) return "under a minute";
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.round(hours / 24)} days`;
}

/** The page's own address with the Sessions view and this session open (so links can open new tabs). */
function sessionHref(sessionId) {
  const u = new URL(location.href);
  u.searchParams.set("view", "sessions");
  u.searchParams.set("session", sessionId);
  return u.pathname + u.search;
}
