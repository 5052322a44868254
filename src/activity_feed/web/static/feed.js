// The feed view: a bounded window of cards (store.js) mirrored in the DOM, history paged in with
// `before` as the user scrolls, live changes applied in batches (one per animation frame, from main.js).

import { PAGE_SIZE, fetchRecent } from "./api.js";
import { historyParams, matches } from "./filters.js";
import { cardId, createCard, isOnScreen, refreshTime, toggleCard, updateCard } from "./render/cards.js";
import { EventWindow, MAX_CARDS, normalize } from "./store.js";

// A text search is client-side: fetch at most this many pages in a row looking for matches.
const MAX_PAGES_PER_LOAD = 5;
// Bigger bursts skip the entry animation: animating hundreds of cards at once is noise, and costs frames.
const ANIMATE_BELOW = 20;

export class Feed {
  /**
   * `onOpenSession` and `idPrefix` are passed to the cards (render/cards.js); `onHistory` sees each page
   * of history shown (the page takes its suggestions for the filters from it).
   */
  constructor({ list, sentinel, status, newer, onFilterCorrelation, onOpenSession, idPrefix, onCountChange, onHistory }) {
    this.list = list;
    this.sentinel = sentinel;
    this.statusEl = status;
    this.newerButton = newer;
    this.onCountChange = onCountChange ?? (() => {});
    this.onHistory = onHistory ?? (() => {});
    this.actions = { onFilterCorrelation, onOpenSession, idPrefix };
    this.window = new EventWindow();
    this.cards = new Map(); // id -> card element, exactly the ids in this.window
    this.filters = null;
    this.exhausted = false; // the server has nothing older than the oldest held
    this.pagingCursor = null; // the oldest id fetched: `before` for the next page
    this.initializing = false; // the first page is loading: stream messages are held until it is in
    this.held = [];
    this.topTrimmed = false; // newer events were dropped to bound the window: the top is not live
    this.newerCount = 0;
    this.loading = null;
    this.abort = null;
    this.generation = 0;
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadOlder();
    }, { rootMargin: "800px 0px" });
    this.observer.observe(sentinel);
    this.newerButton.addEventListener("click", () => {
      this.reload().then(() => window.scrollTo({ top: 0 }));
    });
  }

  /** Replace everything with the newest page of history under `filters` (or the current ones). */
  async reload(filters = this.filters) {
    this.filters = filters;
    this.generation += 1;
    this.abort?.abort();
    this.abort = new AbortController();
    this.loading = null;
    this.window.clear();
    for (const card of this.cards.values()) card.remove();
    this.cards.clear();
    this.exhausted = false;
    this.pagingCursor = null;
    this.initializing = true;
    this.held = [];
    this.topTrimmed = false;
    this.newerCount = 0;
    this.#showNewer();
    this.#setStatus("loading", "Loading history…");
    await this.loadOlder();
  }

  /** Load the next page(s) of older history after the oldest held card. */
  loadOlder() {
    if (this.loading || this.exhausted || !this.filters) return this.loading ?? Promise.resolve();
    const generation = this.generation;
    const signal = this.abort.signal;
    this.loading = (async () => {
      try {
        let added = 0;
        for (let page = 0; page < MAX_PAGES_PER_LOAD && added < 20 && !this.exhausted; page++) {
          const events = await fetchRecent(historyParams(this.filters), {
            before: this.pagingCursor ?? undefined,
            signal,
          });
          if (generation !== this.generation) return;
          if (events.length < PAGE_SIZE) this.exhausted = true;
          // Page on from the oldest event fetched, shown or not (the text search may hide a whole page).
          if (events.length > 0) this.pagingCursor = events.at(-1).id;
          // The text search (and any filter the server ignores) is applied here.
          const fitting = events.map(normalize).filter((e) => matches(this.filters, e));
          this.onHistory(fitting);
          added += this.#renderAppended(this.window.appendOlder(fitting));
          if (this.initializing) {
            // Changes that arrived while the first page loaded apply on top of it, in order.
            this.initializing = false;
            const held = this.held;
            this.held = [];
            if (held.length) this.apply(held);
          }
        }
        this.#trimTop();
        this.#updateStatus();
      } catch (error) {
        if (error.name === "AbortError" || generation !== this.generation) return;
        this.initializing = false;
        this.held = [];
        this.#setStatus("error", `Could not load history: ${error.message}`);
      } finally {
        if (generation === this.generation) this.loading = null;
      }
      // Still at the bottom (a short page, a tall screen)? Keep filling.
      if (generation === this.generation && !this.exhausted && this.#sentinelVisible()) this.loadOlder();
    })();
    return this.loading;
  }

  /** Apply a batch of stream messages (in order). */
  apply(messages) {
    if (this.initializing) {
      this.held.push(...messages);
      // Bounded even if history is slow to answer during a burst: the newest changes matter most.
      if (this.held.length > 5000) this.held.splice(0, this.held.length - 5000);
      return 0;
    }
    let fresh = 0;
    let complete = this.exhausted;
    for (const message of coalesce(messages)) {
      if (message.type === "activity_deleted") {
        this.#remove(message.event.id);
        continue;
      }
      const event = normalize(message.event);
      const fits = matches(this.filters, event);
      const card = this.cards.get(event.id);
      if (card) {
        if (!fits) this.#remove(event.id);
        else {
          this.window.replace(event);
          updateCard(card, event);
        }
        continue;
      }
      if (!fits) continue;
      if (this.topTrimmed) {
        // The newest cards are not shown (the user paged far back): count, do not insert.
        this.newerCount += 1;
        continue;
      }
      if (this.window.insert(event, complete)) {
        this.cards.set(event.id, createCard(event, this.actions));
        fresh += 1;
      }
    }
    if (fresh > 0) this.#placeNew(fresh < ANIMATE_BELOW);
    this.#trimBottom();
    this.#showNewer();
    this.#updateStatus();
    return fresh;
  }

  /** Expand, scroll to and focus a card; false when it is not in the window. */
  reveal(id) {
    const card = this.cards.get(id);
    if (!card) return false;
    toggleCard(card, true);
    card.scrollIntoView({ block: "center", behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
    card.querySelector(".card-head").focus({ preventScroll: true });
    return true;
  }

  /** Relative times of the cards on screen; the others catch up when they come into view (cards.js). */
  refreshTimes() {
    const now = Date.now();
    for (const card of this.cards.values()) if (isOnScreen(card)) refreshTime(card, now);
  }

  get size() {
    return this.window.size;
  }

  // --- internals ---

  #renderAppended(events) {
    if (events.length === 0) return 0;
    const fragment = document.createDocumentFragment();
    for (const event of events) {
      const card = createCard(event, this.actions);
      this.cards.set(event.id, card);
      fragment.append(card);
    }
    this.list.append(fragment);
    return events.length;
  }

  #placeNew(animate) {
    // Walk from the oldest up: every card after the one being placed is already in the DOM.
    const order = this.window.order;
    let next = null;
    for (let i = order.length - 1; i >= 0; i--) {
      const card = this.cards.get(order[i]);
      if (!card.isConnected) {
        this.list.insertBefore(card, next);
        if (animate) card.classList.add("enter");
      }
      next = card;
    }
  }

  #remove(id) {
    const card = this.cards.get(id);
    this.window.remove(id);
    if (!card) return;
    this.cards.delete(id);
    card.remove();
  }

  #trimBottom() {
    if (this.window.size <= MAX_CARDS) return;
    for (const id of this.window.trimOldest(MAX_CARDS)) {
      this.cards.get(id)?.remove();
      this.cards.delete(id);
    }
    // What was dropped is still on the server: scrolling down fetches it again.
    this.exhausted = false;
    this.pagingCursor = this.window.oldestId;
  }

  #trimTop() {
    if (this.window.size <= MAX_CARDS) return;
    for (const id of this.window.trimNewest(MAX_CARDS)) {
      this.cards.get(id)?.remove();
      this.cards.delete(id);
    }
    this.topTrimmed = true;
    this.#showNewer();
  }

  #showNewer() {
    // Called once per batch: write only on change, so a burst does not restyle the button every frame.
    const hidden = !this.topTrimmed;
    if (this.newerButton.hidden !== hidden) this.newerButton.hidden = hidden;
    const text = this.newerCount > 0 ? `${this.newerCount} newer · back to the latest` : "Back to the latest";
    if (this.newerButton.textContent !== text) this.newerButton.textContent = text;
  }

  #sentinelVisible() {
    const rect = this.sentinel.getBoundingClientRect();
    return rect.top < window.innerHeight + 800 && this.sentinel.offsetParent !== null;
  }

  #updateStatus() {
    this.onCountChange(this.cards.size);
    if (this.cards.size === 0) {
      this.#setStatus(
        "empty",
        this.exhausted ? "No activity yet. Events appear here the moment they are logged." : "Loading…",
      );
    } else if (this.exhausted) this.#setStatus("end", "That is everything.");
    else this.#setStatus("more", "Scroll for older activity");
  }

  #setStatus(kind, text) {
    if (this.statusEl.dataset.kind !== kind) this.statusEl.dataset.kind = kind;
    if (this.statusEl.textContent !== text) this.statusEl.textContent = text;
  }
}

/**
 * One message per event id, the latest, in the order the ids first appeared: an event logged `pending`
 * and finished within the same frame is inserted once, already finished, instead of inserted and then
 * updated. Batches with a deletion are applied as they are (rare, and order matters there).
 */
function coalesce(messages) {
  if (messages.length < 2) return messages;
  const latest = new Map();
  for (const message of messages) {
    if (message.type === "activity_deleted") return messages;
    latest.set(message.event.id, message);
  }
  return latest.size === messages.length ? messages : latest.values();
}
