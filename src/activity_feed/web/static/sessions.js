// The Sessions view: every session (one MCP connection, or one conversation its client names), most
// recently active first, paged with `before`; opening one shows its events (a Feed) and its timeline
// (a fitted Timeline), both live.
//
// The view has its own stream, open only while the view is shown. Listing, it takes every change and
// refreshes the list when a session it has not seen starts (soon) or a listed one changes (at most every
// few seconds): the list's counts come from the API, never from counting messages. With a session open,
// the stream is filtered by that session_id on the server, so the session's events arrive whatever the
// feed's own filters are, and nothing else does.

import { SESSIONS_PAGE, fetchSessions, streamURL } from "./api.js";
import { emptyFilters, streamParams } from "./filters.js";
import { Feed } from "./feed.js";
import { createRow, fillRow, setText, summary } from "./render/sessions.js";
import { LiveStream } from "./stream.js";
import { Timeline } from "./timeline.js";

const NEW_SESSION_DELAY_MS = 250; // an unseen session: show it soon
const CHANGED_DELAY_MS = 3000; // counts of a listed session changed: refresh at most this often
const MIN_REFRESH_INTERVAL_MS = 1000;
const MAX_HELD = 10_000; // messages held during a pause; beyond that, resuming reloads
const FIND_PAGES = 5; // a session opened by URL is looked for in this many pages of 200

export class SessionsView {
  /**
   * @param {object} o
   * @param {(id: string) => void} o.onOpenEvent  open an event that is not in the session's feed
   * @param {(id: string) => void} o.onFilterCorrelation
   * @param {(session: string) => void} o.onNavigate  the open session changed ("" for the list)
   * @param {(sessions: object[]) => void} o.onSessions  sessions were loaded (for the client filter)
   */
  constructor({ root, onOpenEvent, onFilterCorrelation, onNavigate, onSessions }) {
    const $ = (id) => root.querySelector(`#${id}`);
    this.root = root;
    this.listPanel = $("sessions-list-panel");
    this.listEl = $("sessions-list");
    this.statusEl = $("sessions-status");
    this.moreButton = $("sessions-more");
    this.detailPanel = $("session-detail");
    this.titleEl = $("session-title");
    this.summaryEl = $("session-summary");
    this.connectionEl = $("session-connection");
    this.onNavigate = onNavigate;
    this.onSessions = onSessions ?? (() => {});
    this.sessions = new Map(); // session_id -> summary, every one loaded
    this.order = []; // session ids, most recently active first
    this.rows = new Map(); // session_id -> row element
    this.exhausted = false;
    this.visible = false;
    this.sessionId = ""; // the open session, "" when listing
    this.paused = false;
    this.held = [];
    this.heldOverflow = false;
    this.dirty = false; // a change arrived while paused
    this.refreshTimer = null;
    this.refreshDue = 0;
    this.lastRefresh = 0;
    this.listing = null;
    this.generation = 0;
    this.queue = [];
    this.flushScheduled = false;

    this.feed = new Feed({
      list: $("session-feed"),
      sentinel: $("session-sentinel"),
      status: $("session-status"),
      newer: $("session-newer"),
      onFilterCorrelation,
      idPrefix: "session-",
    });
    this.timeline = new Timeline({
      root: $("session-timeline"),
      tooltipId: "session-timeline-tooltip",
      fit: true,
      onOpen: (id) => {
        if (!this.feed.reveal(id)) onOpenEvent(id);
      },
    });
    this.stream = new LiveStream({
      urlFor: streamURL,
      onMessage: (message) => this.#receive(message),
      onResync: () => this.#reload(),
      onState: (state) => this.#showConnection(state),
    });
    this.moreButton.addEventListener("click", () => this.#loadMore());
    $("session-back").addEventListener("click", () => this.navigate(""));
    this.listEl.addEventListener("click", (e) => {
      const link = e.target.closest("a[data-session]");
      // Modified clicks (new tab, new window) keep the link's own behaviour.
      if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      this.navigate(link.dataset.session);
    });
  }

  /** Open a session ("" shows the list) and tell the page, which records it in the URL. */
  navigate(sessionId) {
    this.onNavigate(sessionId);
    this.show(sessionId);
    (sessionId ? this.detailPanel.querySelector("h2") : this.listPanel.querySelector("h2"))?.focus({ preventScroll: false });
  }

  /** The view is shown, listing (`sessionId` "") or with one session open. */
  show(sessionId = "") {
    this.visible = true;
    this.sessionId = sessionId;
    this.listPanel.hidden = Boolean(sessionId);
    this.detailPanel.hidden = !sessionId;
    this.queue = [];
    this.held = [];
    this.heldOverflow = false;
    this.stream.start(streamParams({ ...emptyFilters(), session_id: sessionId }));
    this.#reload();
  }

  /** The view is hidden: its stream closes (it reloads when shown again). */
  hide() {
    if (!this.visible) return;
    this.visible = false;
    this.generation += 1;
    this.stream.stop();
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.#showConnection("closed");
  }

  setPaused(paused) {
    this.paused = paused;
    if (paused) return;
    const held = this.held;
    const overflow = this.heldOverflow;
    this.held = [];
    this.heldOverflow = false;
    if (!this.visible) return;
    if (overflow) this.#reload();
    else {
      for (const message of held) this.#apply(message);
      if (this.dirty) this.#refreshSoon(true);
    }
  }

  reconnectNow() {
    if (this.visible) this.stream.reconnectNow();
  }

  /** Relative times of the listed sessions and of the open one. */
  refreshTimes() {
    if (!this.visible) return;
    if (this.sessionId) this.#renderSummary();
    else for (const id of this.order) fillRow(this.rows.get(id), this.sessions.get(id));
  }

  /** Re-render the open session's timeline (running calls grow). */
  tick() {
    if (this.visible && this.sessionId && this.timeline.loaded) this.timeline.render();
  }

  // --- loading ---

  #reload() {
    this.generation += 1;
    if (this.sessionId) {
      const filters = { ...emptyFilters(), session_id: this.sessionId };
      this.#renderSummary();
      this.feed.reload(filters);
      this.timeline.load(filters, 0);
      if (!this.sessions.has(this.sessionId)) this.#find(this.sessionId);
      else this.#refreshList();
    } else {
      this.#refreshList({ replace: true });
    }
  }

  /** The first page again, merged into what is listed (or replacing it). */
  async #refreshList({ replace = false } = {}) {
    const generation = this.generation;
    this.lastRefresh = Date.now();
    this.dirty = false;
    if (replace) this.#setStatus("loading", "Loading sessions…");
    try {
      const page = await fetchSessions({ limit: SESSIONS_PAGE });
      if (generation !== this.generation) return;
      if (replace) {
        this.sessions.clear();
        this.exhausted = page.length < SESSIONS_PAGE;
      }
      this.#merge(page);
    } catch (error) {
      if (generation === this.generation) this.#setStatus("error", `Could not load sessions: ${error.message}`);
    }
  }

  async #loadMore() {
    if (this.listing) return;
    const generation = this.generation;
    this.moreButton.disabled = true;
    this.listing = fetchSessions({ limit: SESSIONS_PAGE, before: this.order.at(-1) })
      .then((page) => {
        if (generation !== this.generation) return;
        this.exhausted = page.length < SESSIONS_PAGE;
        this.#merge(page);
      })
      .catch((error) => {
        if (generation === this.generation) this.#setStatus("error", `Could not load more sessions: ${error.message}`);
      })
      .finally(() => {
        this.listing = null;
        this.moreButton.disabled = false;
      });
  }

  /** A session opened by URL that the list has not loaded: look for it a few pages deep. */
  async #find(sessionId) {
    const generation = this.generation;
    let before;
    try {
      for (let page = 0; page < FIND_PAGES; page++) {
        const sessions = await fetchSessions({ limit: 200, before });
        if (generation !== this.generation) return;
        const found = sessions.find((s) => s.session_id === sessionId);
        if (found) {
          this.sessions.set(found.session_id, found);
          break;
        }
        if (sessions.length < 200) break;
        before = sessions.at(-1).session_id;
      }
    } catch {
      // The summary is a nicety here: the session's events and timeline say what happened.
    }
    if (generation === this.generation) this.#renderSummary();
  }

  #merge(page) {
    for (const session of page) this.sessions.set(session.session_id, session);
    this.order = [...this.sessions.values()]
      .sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen) || (a.session_id < b.session_id ? -1 : 1))
      .map((s) => s.session_id);
    this.onSessions(page);
    if (this.sessionId) this.#renderSummary();
    else this.#renderList();
  }

  // --- live ---

  #receive(message) {
    if (!this.visible) return;
    if (this.paused) {
      if (this.held.length < MAX_HELD) this.held.push(message);
      else this.heldOverflow = true;
      return;
    }
    this.#apply(message);
  }

  #apply(message) {
    const sessionId = message.event?.session_id;
    if (!this.sessionId) {
      if (!sessionId) return;
      this.#refreshSoon(!this.sessions.has(sessionId));
      return;
    }
    // One session's events: batched per animation frame, like the feed.
    this.queue.push(message);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      requestAnimationFrame(() => this.#flush());
      setTimeout(() => this.#flush(), 500); // hidden tabs get no animation frames
    }
    this.#refreshSoon(false);
  }

  #flush() {
    if (!this.flushScheduled) return;
    this.flushScheduled = false;
    const messages = this.queue;
    this.queue = [];
    if (messages.length === 0 || !this.sessionId) return;
    this.feed.apply(messages);
    this.timeline.apply(messages);
    this.timeline.render();
  }

  /** Refresh the list soon (an unseen session) or within a few seconds (changed counts), throttled. */
  #refreshSoon(urgent) {
    if (this.paused) {
      this.dirty = true;
      return;
    }
    const now = Date.now();
    const due = Math.max(now + (urgent ? NEW_SESSION_DELAY_MS : CHANGED_DELAY_MS), this.lastRefresh + MIN_REFRESH_INTERVAL_MS);
    if (this.refreshTimer && this.refreshDue <= due) return;
    clearTimeout(this.refreshTimer);
    this.refreshDue = due;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      if (this.visible) this.#refreshList();
    }, due - now);
  }

  // --- rendering ---

  #renderList() {
    const seen = new Set();
    this.order.forEach((id, i) => {
      seen.add(id);
      let row = this.rows.get(id);
      if (!row) {
        row = createRow(id);
        this.rows.set(id, row);
      }
      fillRow(row, this.sessions.get(id));
      if (this.listEl.children[i] !== row) this.listEl.insertBefore(row, this.listEl.children[i] ?? null);
    });
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.remove();
        this.rows.delete(id);
      }
    }
    this.moreButton.hidden = this.exhausted || this.order.length === 0;
    if (this.order.length === 0) {
      this.#setStatus("empty", "No sessions yet. Events logged with a session_id are grouped here.");
    } else this.#setStatus("end", this.exhausted ? "That is every session." : "");
  }

  #renderSummary() {
    const id = this.sessionId;
    if (!id) return;
    const session = this.sessions.get(id);
    setText(this.titleEl, session?.user_source || "Session");
    this.summaryEl.replaceChildren(...summary(id, session));
  }

  /** The view's own stream, shown next to the open session's title. */
  #showConnection(state) {
    this.root.dataset.stream = state;
    const text = { live: "Live", waiting: "Reconnecting…", connecting: "Connecting…" }[state] ?? "";
    setText(this.connectionEl.querySelector(".conn-text"), text);
    this.connectionEl.dataset.state = state === "closed" ? "connecting" : state;
  }

  #setStatus(kind, text) {
    if (this.statusEl.dataset.kind !== kind) this.statusEl.dataset.kind = kind;
    setText(this.statusEl, text);
    this.statusEl.hidden = !text;
  }
}
