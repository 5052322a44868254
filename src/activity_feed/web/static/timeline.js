// The timeline view: one lane per tool over the last N minutes, each call a bar as long as its
// duration, coloured by status. Bars are reused by id between renders (keyed DOM), so a re-render each
// second (pending bars grow with time) only changes a few style properties.
// With `fit`, the window is not the last N minutes but whatever the loaded events span (one session's
// timeline), reaching to now while anything in it is recent or still running.

import { fetchRecent } from "./api.js";
import { historyParams, matches } from "./filters.js";
import { STATUS_LABELS, TYPE_LABELS, duration, el, exactTime, relativeTime } from "./format.js";
import { normalize } from "./store.js";

const MAX_EVENTS = 3000; // newest kept; bounds memory and DOM (at 200 events/s a 60-minute window is huge)
const MAX_PAGES = 6; // history fetched when the view opens: 6 x 500 events at most
const MAX_LANES = 40;
// A fitted window reaches to now when its latest activity is this recent (the session may go on).
const LIVE_WITHIN_MS = 5 * 60_000;
const MIN_FIT_SPAN_MS = 60_000;

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const clockSeconds = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dayClock = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

export class Timeline {
  constructor({ root, onOpen, tooltipId = "timeline-tooltip", fit = false }) {
    this.root = root;
    this.onOpen = onOpen;
    this.fit = fit;
    this.tooltipId = tooltipId;
    this.events = new Map(); // id -> normalised event
    this.bars = new Map(); // id -> bar element
    this.lanes = new Map(); // tool -> {lane, track}
    this.minutes = 15;
    this.filters = null;
    this.generation = 0;
    this.loaded = false;
    this.lanesEl = el("div", { class: "lanes", role: "list" });
    this.axis = el("div", { class: "axis", "aria-hidden": "true" });
    this.empty = el("p", { class: "empty-note", text: fit ? "No calls yet." : "No calls in this window yet." });
    this.tooltip = el("div", { class: "tooltip glass", role: "tooltip", id: tooltipId, hidden: true });
    root.replaceChildren(this.axis, this.lanesEl, this.empty, this.tooltip);
    // One set of delegated listeners for all bars: thousands of bars must not mean thousands of listeners.
    const barOf = (e) => e.target.closest?.(".bar");
    const show = (e) => barOf(e) && this.#showTip(barOf(e));
    const hide = (e) => barOf(e) && this.#hideTip();
    this.lanesEl.addEventListener("mouseover", show);
    this.lanesEl.addEventListener("focusin", show);
    this.lanesEl.addEventListener("mouseout", hide);
    this.lanesEl.addEventListener("focusout", hide);
    this.lanesEl.addEventListener("click", (e) => barOf(e) && this.onOpen(barOf(e)._event.id));
  }

  /** Load the window's history for `filters` and `minutes`, then render. */
  async load(filters, minutes) {
    this.filters = filters;
    this.minutes = minutes;
    this.generation += 1;
    const generation = this.generation;
    this.events.clear();
    const since = Date.now() - minutes * 60_000;
    let before;
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const events = await fetchRecent(historyParams(filters), { before, limit: 500 });
        if (generation !== this.generation) return;
        for (const raw of events) {
          const event = normalize(raw);
          if (matches(filters, event) && !this.events.has(event.id)) this.events.set(event.id, event);
        }
        if (events.length < 500 || (!this.fit && normalize(events.at(-1))._ms < since)) break;
        before = events.at(-1).id;
      }
      this.loaded = true;
    } catch (error) {
      this.empty.textContent = `Could not load the timeline: ${error.message}`;
    }
    this.render();
  }

  apply(messages) {
    if (!this.loaded) return;
    for (const message of messages) {
      const event = message.event;
      if (message.type === "activity_deleted" || !matches(this.filters, event)) {
        this.events.delete(event.id);
        continue;
      }
      // Map order is insertion order: re-inserting keeps the newest last for the bound below.
      this.events.delete(event.id);
      this.events.set(event.id, normalize(event));
    }
    while (this.events.size > MAX_EVENTS) this.events.delete(this.events.keys().next().value);
  }

  render() {
    const now = Date.now();
    const { start, span, live } = this.fit ? this.#fitted(now) : { start: now - this.minutes * 60_000, span: this.minutes * 60_000, live: true };
    const end = start + span;
    const byTool = new Map();
    for (const event of this.events.values()) {
      const finish = event.status === "pending" ? now : event._ms + (event.duration_ms ?? 0);
      if (finish < start || event._ms > end + 5000) continue;
      const tool = event.tool_name ?? TYPE_LABELS[event.event_type] ?? event.event_type;
      if (!byTool.has(tool)) byTool.set(tool, []);
      byTool.get(tool).push([event, finish]);
    }
    const tools = [...byTool.keys()].sort((a, b) => a.localeCompare(b)).slice(0, MAX_LANES);
    const seen = new Set();
    const lanesInOrder = [];
    for (const tool of tools) {
      const lane = this.#lane(tool);
      lanesInOrder.push(lane.lane);
      const calls = byTool.get(tool);
      lane.count.textContent = String(calls.length);
      for (const [event, finish] of calls) {
        seen.add(event.id);
        const bar = this.#bar(event, lane.track);
        const left = Math.max(0, (event._ms - start) / span);
        const width = Math.max(0, (Math.min(finish, end) - Math.max(event._ms, start)) / span);
        bar.style.left = `${(left * 100).toFixed(3)}%`;
        bar.style.width = `${(width * 100).toFixed(3)}%`;
        bar.dataset.status = event.status;
        bar._event = event;
        bar.setAttribute("aria-label", describe(event));
      }
    }
    for (const [id, bar] of this.bars) {
      if (!seen.has(id)) {
        bar.remove();
        this.bars.delete(id);
      }
    }
    for (const [tool, lane] of this.lanes) {
      if (!tools.includes(tool)) {
        lane.lane.remove();
        this.lanes.delete(tool);
      }
    }
    // Keep lanes sorted without re-creating them.
    lanesInOrder.forEach((lane, i) => {
      if (this.lanesEl.children[i] !== lane) this.lanesEl.insertBefore(lane, this.lanesEl.children[i] ?? null);
    });
    this.empty.hidden = tools.length > 0;
    this.#axis(start, span, live);
    if (this.tooltip._bar?.isConnected === false) this.#hideTip();
    else if (this.tooltip._bar) this.#showTip(this.tooltip._bar);
  }

  #lane(tool) {
    let lane = this.lanes.get(tool);
    if (lane) return lane;
    const count = el("span", { class: "lane-count" });
    const track = el("div", { class: "track" });
    const node = el(
      "div",
      { class: "lane", role: "listitem" },
      el("div", { class: "lane-label" }, el("span", { class: "lane-name", text: tool, title: tool }), count),
      track,
    );
    lane = { lane: node, track, count };
    this.lanes.set(tool, lane);
    return lane;
  }

  #bar(event, track) {
    let bar = this.bars.get(event.id);
    if (!bar) {
      bar = el("button", { class: "bar", type: "button", "aria-describedby": this.tooltipId });
      this.bars.set(event.id, bar);
    }
    if (bar.parentElement !== track) track.append(bar);
    return bar;
  }

  #showTip(bar) {
    const event = bar._event;
    const tip = this.tooltip;
    tip._bar = bar;
    tip.replaceChildren(
      el("strong", { text: event.tool_name ?? TYPE_LABELS[event.event_type] }),
      el("span", { class: `badge badge-${event.status}` }, el("span", { class: "badge-dot" }), el("span", { text: STATUS_LABELS[event.status] })),
      el("span", { text: `${exactTime(event._ms)} (${relativeTime(event._ms)})` }),
      event.duration_ms !== null && event.duration_ms !== undefined
        ? el("span", { text: `Duration ${duration(event.duration_ms)}` })
        : event.status === "pending"
          ? el("span", { text: `Running for ${duration(Date.now() - event._ms)}` })
          : null,
      event.user_source ? el("span", { class: "muted", text: event.user_source }) : null,
      event.error_message ? el("span", { class: "tip-error", text: event.error_message }) : null,
    );
    tip.hidden = false;
    const rootBox = this.root.getBoundingClientRect();
    const box = bar.getBoundingClientRect();
    const width = tip.offsetWidth;
    const x = Math.min(Math.max(box.left - rootBox.left, 0), rootBox.width - width);
    tip.style.left = `${x}px`;
    tip.style.top = `${box.bottom - rootBox.top + 6}px`;
  }

  #hideTip() {
    this.tooltip.hidden = true;
    this.tooltip._bar = null;
  }

  /** The span of the loaded events, a little padded; to now while the latest of them is recent. */
  #fitted(now) {
    let first = Infinity;
    let last = -Infinity;
    for (const event of this.events.values()) {
      first = Math.min(first, event._ms);
      last = Math.max(last, event.status === "pending" ? now : event._ms + (event.duration_ms ?? 0));
    }
    if (first === Infinity) return { start: now - MIN_FIT_SPAN_MS, span: MIN_FIT_SPAN_MS, live: true };
    const live = now - last < LIVE_WITHIN_MS;
    const end = live ? now : last;
    const span = Math.max(MIN_FIT_SPAN_MS, (end - first) * 1.04);
    return { start: end - span, span, live };
  }

  #axis(start, span, live) {
    const ticks = this.fit ? 4 : this.minutes <= 15 ? 5 : 6;
    const format = span > 20 * 3600_000 ? dayClock : span < 10 * 60_000 ? clockSeconds : clock;
    const labels = [];
    for (let i = 0; i <= ticks; i++) {
      const minutesAgo = Math.round(((ticks - i) * span) / ticks / 60_000);
      const text =
        i === ticks && live ? "now" : this.fit ? format.format(start + (span * i) / ticks) : `−${minutesAgo} min`;
      labels.push(el("span", { style: `left:${(i / ticks) * 100}%`, class: i === ticks && !live ? "axis-end" : null, text }));
    }
    this.axis.replaceChildren(el("span", { class: "axis-spacer" }), el("div", { class: "axis-track" }, ...labels));
  }
}

function describe(event) {
  const parts = [event.tool_name ?? TYPE_LABELS[event.event_type], STATUS_LABELS[event.status], relativeTime(event._ms)];
  if (event.duration_ms !== null && event.duration_ms !== undefined) parts.push(duration(event.duration_ms));
  if (event.error_message) parts.push(event.error_message);
  return parts.join(", ");
}
