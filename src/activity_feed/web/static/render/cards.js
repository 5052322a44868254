// One activity card: built once, then updated in place when the event changes (pending -> success or
// error), so the card keeps its place, its focus and its expanded state.

import { STATUS_LABELS, TYPE_LABELS, duration, el, exactTime, icon, relativeTime } from "../format.js";
import { renderJSON } from "./json.js";
import { isCancelled, mcpChips, mcpFacts } from "./mcp.js";

// Writes only what changed: assigning textContent replaces the text node (new text to shape and lay
// out) and setting an attribute schedules style invalidation, even when the value is the same. A burst
// updates hundreds of cards a second, and most of their fields never change after the first render.
function setText(node, value) {
  if (node.textContent !== value) node.textContent = value;
}

function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

/**
 * Whether the card is rendered: `content-visibility: auto` skips cards far from the viewport, and says
 * so with `contentvisibilityautostatechange`. Skipped cards are not flashed and their relative time is
 * refreshed when they come back into view instead of on every timer tick.
 */
export function isOnScreen(card) {
  return !card._skipped;
}

export function cardId(id, prefix = "") {
  return `${prefix}card-${id}`;
}

/**
 * @param {object} event
 * @param {{onFilterCorrelation: (id: string) => void, onOpenSession?: (id: string) => void, idPrefix?: string}} actions
 *   `idPrefix` keeps element ids unique when one event has a card in two lists (the feed and a session).
 */
export function createCard(event, actions) {
  const prefix = actions.idPrefix ?? "";
  const detailsId = `${prefix}details-${event.id}`;
  const head = el(
    "button",
    { class: "card-head", type: "button", "aria-expanded": "false", "aria-controls": detailsId },
    el("span", { class: "type-icon" }, icon(event.event_type)),
    el(
      "span",
      { class: "card-main" },
      el("span", { class: "card-title" }),
      el(
        "span",
        { class: "card-meta" },
        el("span", { class: "card-type" }),
        el("span", { class: "card-source" }),
        el("time", { class: "card-time" }),
      ),
      el("span", { class: "card-mcp", hidden: true }),
    ),
    el(
      "span",
      { class: "card-side" },
      el("span", { class: "badge" }, el("span", { class: "badge-dot", "aria-hidden": "true" }), el("span", { class: "badge-text" })),
      el("span", { class: "card-duration" }),
    ),
    icon("chevron", "icon chevron"),
  );
  const card = el(
    "article",
    { class: "card", id: cardId(event.id, prefix), "data-id": event.id },
    head,
    el("p", { class: "card-error" }),
    el("div", { class: "card-details", id: detailsId, hidden: true }),
  );
  card._actions = actions;
  card._skipped = false;
  card.addEventListener("contentvisibilityautostatechange", (e) => {
    card._skipped = e.skipped;
    if (!e.skipped) refreshTime(card);
    // A flash that started off screen is not worth finishing there.
    else card.classList.remove("settled", "enter");
  });
  card.addEventListener("animationend", (e) => {
    if (e.target === card) card.classList.remove("settled", "enter");
  });
  head.addEventListener("click", () => toggleCard(card));
  updateCard(card, event, false);
  return card;
}

/** Show the event's latest state; `animate` flashes the card when its status changed. */
export function updateCard(card, event, animate = true) {
  const previous = card._event;
  card._event = event;
  setAttr(card, "data-status", event.status);
  setAttr(card, "data-type", event.event_type);
  const q = (sel) => card.querySelector(sel);
  const title = event.tool_name || TYPE_LABELS[event.event_type] || event.event_type;
  const typeLabel = TYPE_LABELS[event.event_type] ?? event.event_type;
  setText(q(".card-title"), title);
  setAttr(q(".card-title"), "title", title);
  setText(q(".card-type"), typeLabel);
  const source = q(".card-source");
  setText(source, event.user_source ?? "");
  setHidden(source, !event.user_source);
  const time = q(".card-time");
  setAttr(time, "datetime", event.timestamp);
  if (!previous || previous._ms !== event._ms) time.title = exactTime(event._ms);
  setText(time, relativeTime(event._ms));
  setAttr(q(".type-icon"), "title", typeLabel);
  setAttr(q(".badge"), "class", `badge badge-${event.status}`);
  setText(q(".badge-text"), STATUS_LABELS[event.status] ?? event.status);
  setText(q(".card-duration"), duration(event.duration_ms));
  const error = q(".card-error");
  setText(error, event.error_message ?? "");
  setHidden(error, !event.error_message);
  const chips = updateMcpLine(card, event);
  setAttr(
    q(".card-head"),
    "aria-label",
    `${title}, ${TYPE_LABELS[event.event_type] ?? ""}, ${STATUS_LABELS[event.status] ?? event.status}` +
      `${chips ? `, ${chips}` : ""}${event.user_source ? `, from ${event.user_source}` : ""}, ${time.textContent}`,
  );
  if (card.classList.contains("expanded")) fillDetails(card);
  if (animate && previous && previous.status !== event.status && !card._skipped) {
    // No restart trick (reading offsetWidth) here: forcing a layout per changed card is what made
    // bursts of status changes slow. A card already flashing just keeps flashing. Cards off screen are
    // not flashed: nobody sees it, and the (main-thread) colour animation would cost every frame.
    card.classList.add("settled");
  }
}

/**
 * The MCP line: rebuilt only when what it shows changed (most updates of a card do not touch it).
 * Returns the chips as one phrase for the card's accessible name.
 */
function updateMcpLine(card, event) {
  const chips = mcpChips(event);
  const key = chips.map((c) => `${c.kind}\u0000${c.text}\u0000${c.title}`).join("\u0001");
  const line = card.querySelector(".card-mcp");
  if (card._mcpKey !== key) {
    card._mcpKey = key;
    line.replaceChildren(...chips.map((c) => el("span", { class: `chip-mcp chip-${c.kind}`, title: c.title, text: c.text })));
    setHidden(line, chips.length === 0);
  }
  setAttr(card, "data-cancelled", isCancelled(event) ? "true" : "false");
  return chips.map((c) => c.text).join(", ");
}

export function refreshTime(card, now = Date.now()) {
  if (!card._event) return;
  const time = card.querySelector(".card-time");
  const text = relativeTime(card._event._ms, now);
  if (time.textContent !== text) time.textContent = text;
}

export function toggleCard(card, open = !card.classList.contains("expanded")) {
  card.classList.toggle("expanded", open);
  card.querySelector(".card-head").setAttribute("aria-expanded", String(open));
  const details = card.querySelector(".card-details");
  details.hidden = !open;
  if (open) fillDetails(card);
  else details.replaceChildren(); // the JSON tree can be large: keep it only while it is shown
}

function fillDetails(card) {
  const event = card._event;
  const details = card.querySelector(".card-details");
  const row = (label, ...value) => [el("dt", { text: label }), el("dd", {}, ...value)];
  const correlation = event.correlation_id
    ? el(
        "button",
        {
          class: "link",
          type: "button",
          title: "Show only events with this correlation id",
          onclick: () => card._actions.onFilterCorrelation(event.correlation_id),
        },
        event.correlation_id,
      )
    : el("span", { class: "muted", text: "none" });
  const session = !event.session_id
    ? null
    : card._actions.onOpenSession
      ? el(
          "button",
          {
            class: "link",
            type: "button",
            title: "Open this session",
            onclick: () => card._actions.onOpenSession(event.session_id),
          },
          event.session_id,
        )
      : el("code", { class: "selectable", text: event.session_id });
  details.replaceChildren(
    el(
      "dl",
      { class: "facts" },
      ...row("Time", el("time", { datetime: event.timestamp, text: exactTime(event._ms) })),
      ...row("ID", el("code", { class: "selectable", text: event.id })),
      ...row("Correlation", correlation),
      ...(session ? row("Session", session) : []),
      ...(event.duration_ms !== null && event.duration_ms !== undefined
        ? row("Duration", duration(event.duration_ms))
        : []),
      ...mcpFacts(event).flatMap(([label, value]) => row(label, value)),
    ),
    el("h3", { class: "details-title", text: "Data" }),
    renderJSON(event.data ?? {}),
  );
}
