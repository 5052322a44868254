// Wires the page together: URL state, filters, the four views, the live stream, pause, the
// connection indicator and the screen-reader announcements. Stream messages are queued and applied
// once per animation frame, so a burst of hundreds of events per second costs one DOM update a frame.

import { fetchEvent, streamURL } from "./api.js";
import { VIEWS, historyParams, matches, readState, streamParams, writeState } from "./filters.js";
import { FilterForm } from "./filter-form.js";
import { Feed } from "./feed.js";
import { Announcer } from "./announce.js";
import { AlertBanner } from "./alerts.js";
import { createCard, toggleCard } from "./render/cards.js";
import { SessionsView } from "./sessions.js";
import { StatsPanel } from "./stats.js";
import { Suggestions } from "./suggestions.js";
import { LiveStream } from "./stream.js";
import { Timeline } from "./timeline.js";
import { normalize } from "./store.js";
import { el } from "./format.js";

const $ = (id) => document.getElementById(id);
const MAX_PAUSED = 10_000; // beyond this, resuming reloads history instead of replaying the buffer
// At most this many stream messages are applied in one animation frame; the rest wait for the next.
// A backlog (a resume after a long pause, a tab coming back) then streams in over a few frames instead
// of one frame that blocks the page for a second.
const MAX_PER_FRAME = 300;

const state = readState();
const filterForm = new FilterForm({
  form: $("filters"),
  correlationChip: $("correlation-chip"),
  clearButton: $("clear-filters"),
  onChange: (filters) => setFilters(filters),
});
const suggestions = new Suggestions({ tools: $("tool-options"), clients: $("source-options") });

// --- views ---

const feed = new Feed({
  list: $("feed-list"),
  sentinel: $("feed-sentinel"),
  status: $("feed-status"),
  newer: $("feed-newer"),
  onFilterCorrelation: (id) => setFilters({ ...state.filters, correlation_id: id }),
  onOpenSession: (id) => openSession(id),
  onHistory: (events) => events.forEach((e) => suggestions.addEvent(e)),
  onCountChange: (n) => {
    // Once per batch: only write on change (at the 500-card bound it no longer changes).
    const list = $("feed-list");
    if (list.getAttribute("aria-setsize") !== String(n)) list.setAttribute("aria-setsize", String(n));
  },
});
const timeline = new Timeline({ root: $("timeline"), onOpen: openEvent });
const stats = new StatsPanel({
  root: $("stats"),
  chart: $("stats-chart"),
  scope: $("stats-scope"),
  onPickTool: (tool) => {
    setView("feed");
    setFilters({ ...state.filters, tool_name: tool });
  },
});
const sessions = new SessionsView({
  root: $("view-sessions"),
  onOpenEvent: showEventDialog,
  onFilterCorrelation: (id) => {
    setView("feed");
    setFilters({ ...state.filters, correlation_id: id });
  },
  onNavigate: (id) => {
    // Opening a session is a page of its own: Back returns to the list.
    state.session = id;
    writeState(state, { push: true });
  },
  onSessions: (list) => suggestions.addSessions(list),
});
const announcer = new Announcer($("announcer"));
const alerts = new AlertBanner($("alerts-banner"));

// --- live stream, batched per frame ---

let queue = [];
let flushScheduled = false;
let paused = false;
let pausedBuffer = [];
let pausedNew = new Set();
let pausedOverflow = false;
let statsDirty = false;

const stream = new LiveStream({
  urlFor: streamURL,
  onMessage: receive,
  onResync: () => reloadAll(),
  onState: showConnection,
});
window.addEventListener("activity-feed-token", () => {
  stream.reconnectNow();
  sessions.reconnectNow();
});

function receive(message) {
  alerts.receive(message); // even while paused: an alert is not activity to hold back
  if (paused) {
    if (message.type === "activity_logged" && matches(state.filters, message.event)) {
      pausedNew.add(message.event.id);
      showPaused();
    }
    if (pausedBuffer.length < MAX_PAUSED) pausedBuffer.push(message);
    else pausedOverflow = true;
    return;
  }
  queue.push(message);
  scheduleFlush();
}

function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  requestAnimationFrame(flush);
  // Hidden tabs get no animation frames: flush on a timer as well, so the queue stays bounded.
  setTimeout(flush, 500);
}

function flush() {
  if (!flushScheduled) return;
  flushScheduled = false;
  let messages = queue;
  queue = [];
  if (messages.length === 0) return;
  if (messages.length > MAX_PER_FRAME) {
    queue = messages.slice(MAX_PER_FRAME);
    messages = messages.slice(0, MAX_PER_FRAME);
    scheduleFlush();
  }
  const started = performance.now();
  feed.apply(messages);
  timeline.apply(messages);
  if (state.view === "timeline") timeline.render();
  statsDirty = true;
  for (const m of messages) {
    if (m.type === "activity_logged" && matches(state.filters, m.event)) announcer.add(m.event);
    suggestions.addEvent(m.event);
  }
  // Cheap counters for measuring bursts (tests/web/measure.py reads them).
  const took = performance.now() - started;
  flushStats.flushes += 1;
  flushStats.messages += messages.length;
  flushStats.totalMs += took;
  flushStats.maxMs = Math.max(flushStats.maxMs, took);
  flushStats.maxBatch = Math.max(flushStats.maxBatch, messages.length);
}
const flushStats = { flushes: 0, messages: 0, totalMs: 0, maxMs: 0, maxBatch: 0 };

function setPaused(value) {
  paused = value;
  sessions.setPaused(paused);
  const button = $("pause");
  button.setAttribute("aria-pressed", String(paused));
  document.body.classList.toggle("is-paused", paused);
  if (!paused) {
    const buffered = pausedBuffer;
    const overflow = pausedOverflow;
    pausedBuffer = [];
    pausedNew = new Set();
    pausedOverflow = false;
    if (overflow) reloadAll();
    else {
      queue.push(...buffered);
      scheduleFlush();
    }
  }
  showPaused();
}

function showPaused() {
  const n = pausedNew.size;
  $("pause-label").textContent = paused ? "Resume" : "Pause";
  $("pause-count").textContent = paused && n > 0 ? String(n) : "";
  $("pause-count").hidden = !(paused && n > 0);
  const banner = $("paused-banner");
  banner.hidden = !paused;
  banner.querySelector("span").textContent = paused
    ? n === 0
      ? "Paused. New activity is held until you resume."
      : `Paused. ${n} new ${n === 1 ? "event" : "events"} arrived since.`
    : "";
}

function showConnection(kind, detail = {}) {
  if (kind === "live") alerts.load(); // what changed while the connection was down
  const node = $("connection");
  node.dataset.state = kind;
  const text =
    kind === "live"
      ? "Live"
      : kind === "connecting"
        ? detail.attempt > 0
          ? "Reconnecting…"
          : "Connecting…"
        : `Offline · retry in ${Math.max(1, Math.round(detail.delay / 1000))} s`;
  node.querySelector(".conn-text").textContent = text;
  node.title = kind === "waiting" ? "The connection dropped; it is retried automatically." : text;
}

// --- filters and URL state ---

function setFilters(filters) {
  if (JSON.stringify(filters) === JSON.stringify(state.filters)) return;
  state.filters = filters;
  writeState(state);
  filterForm.show(filters);
  restart();
}

/** New filters: the stream restarts with its own (server-side) filters and every view reloads. */
function restart() {
  queue = [];
  pausedBuffer = [];
  pausedNew = new Set();
  pausedOverflow = false;
  showPaused();
  stream.start(streamParams(state.filters));
  reloadAll();
}

function reloadAll() {
  feed.reload(state.filters);
  if (state.view === "timeline") timeline.load(state.filters, state.minutes);
  else timeline.loaded = false;
  if (state.view === "stats") stats.load(state.statsWindow);
}

// --- views ---

const tabs = [...document.querySelectorAll('[role="tab"]')];

/** Show a view; `reshow` reloads the Sessions view even when it is already shown (the URL changed). */
function setView(view, { reshow = false } = {}) {
  state.view = view;
  writeState(state);
  for (const tab of tabs) {
    const selected = tab.dataset.view === view;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  if (view === "timeline" && !timeline.loaded) timeline.load(state.filters, state.minutes);
  if (view === "stats") stats.load(state.statsWindow);
  if (view !== "sessions") sessions.hide();
  else if (reshow || !sessions.visible) sessions.show(state.session);
}

/** Open one session in the Sessions view (from a card's details, say). */
function openSession(id) {
  state.session = id;
  if (state.view === "sessions") sessions.navigate(id);
  else {
    writeState({ ...state, view: "sessions" }, { push: true });
    setView("sessions");
  }
}

// Back and Forward move between the session list and the sessions opened from it.
window.addEventListener("popstate", () => {
  const next = readState();
  state.minutes = next.minutes;
  state.statsWindow = next.statsWindow;
  state.session = next.session;
  if (JSON.stringify(next.filters) !== JSON.stringify(state.filters)) {
    state.filters = next.filters;
    filterForm.show(state.filters);
    restart();
  }
  setView(next.view, { reshow: true });
});

for (const tab of tabs) {
  tab.addEventListener("click", () => setView(tab.dataset.view));
  tab.addEventListener("keydown", (e) => {
    // Arrow keys move between tabs (the ARIA tabs pattern); Tab moves on into the panel.
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    next.focus();
    setView(next.dataset.view);
  });
}

$("window").addEventListener("change", (e) => {
  state.minutes = Number(e.target.value);
  writeState(state);
  timeline.load(state.filters, state.minutes);
});
$("stats-window").addEventListener("change", (e) => {
  state.statsWindow = e.target.value;
  writeState(state);
  stats.load(state.statsWindow);
});
$("stats-refresh").addEventListener("click", () => stats.load(state.statsWindow));

function openEvent(id) {
  if (feed.window.has(id)) {
    setView("feed");
    feed.reveal(id);
    return;
  }
  showEventDialog(id);
}

async function showEventDialog(id) {
  const dialog = $("detail");
  const body = $("detail-body");
  try {
    const card = createCard(normalize(await fetchEvent(id)), {
      onFilterCorrelation: (cid) => {
        dialog.close();
        setView("feed");
        setFilters({ ...state.filters, correlation_id: cid });
      },
      onOpenSession: (sid) => {
        dialog.close();
        openSession(sid);
      },
      idPrefix: "dialog-",
    });
    toggleCard(card, true);
    body.replaceChildren(card);
  } catch (error) {
    body.replaceChildren(el("p", { text: `Could not load the event: ${error.message}` }));
  }
  if (!dialog.open) dialog.showModal();
}
$("detail-close").addEventListener("click", () => $("detail").close());

// --- controls and shortcuts ---

$("pause").addEventListener("click", () => setPaused(!paused));
$("paused-resume").addEventListener("click", () => setPaused(false));

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = e.target.closest("input, select, textarea, [contenteditable]");
  if (e.key === "/" && !typing) {
    e.preventDefault();
    filterForm.focusSearch();
  } else if (e.key === "p" && !typing) {
    setPaused(!paused);
  } else if (e.key === "Escape") {
    filterForm.clearSearch(e.target);
  }
});

window.addEventListener("online", () => stream.reconnectNow());

// --- the glass top bar blurs only what is under it ---

// At the top of the page nothing but the background is under the bar, and blurring it every frame of a
// burst (software compositing re-blurs on every redraw) costs a lot for no visible difference.
{
  const bar = document.querySelector(".topbar");
  // The first row under the bar: while it is wholly below the bar, the page is not scrolled under it.
  const firstRow = document.querySelector(".toolbar");
  new IntersectionObserver(
    (entries) => bar.classList.toggle("over-content", entries.at(-1).intersectionRatio < 1),
    { rootMargin: `-${bar.offsetHeight}px 0px 0px 0px`, threshold: 1 },
  ).observe(firstRow);
}

// --- timers: relative times, growing pending bars, fresh stats ---

setInterval(() => {
  if (document.hidden) return;
  feed.refreshTimes();
  sessions.refreshTimes();
}, 15_000);
setInterval(() => {
  if (document.hidden) return;
  if (state.view === "timeline" && timeline.loaded) timeline.render();
  sessions.tick();
}, 1000);
setInterval(() => {
  if (!document.hidden && state.view === "stats" && statsDirty) {
    statsDirty = false;
    stats.load();
  }
}, 5000);
setInterval(() => announcer.flush(), 4000);
setInterval(() => {
  if (!document.hidden) alerts.load();
}, 30_000);

// --- start ---

filterForm.show(state.filters);
$("window").value = String(state.minutes);
$("stats-window").value = state.statsWindow;
setView(state.view);
showPaused();
stream.start(streamParams(state.filters));
feed.reload(state.filters);
suggestions.load();

// A read-only handle for debugging and measurement (see tests/web/measure.py); not an API.
window.activityFeed = { feed, timeline, stats, sessions, stream, state, historyParams, flushStats, alerts };
