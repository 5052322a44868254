// The events the feed holds, newest first, bounded. The DOM mirrors this list exactly (feed.js), so
// bounding it bounds both memory and DOM size however long the page stays open.

export const MAX_CARDS = 500;

/** Parse the timestamp once; sorting and relative times use the number. */
export function normalize(event) {
  const ms = Date.parse(event.timestamp);
  return { ...event, _ms: Number.isNaN(ms) ? Date.now() : ms };
}

function newer(a, b) {
  // Newest first by timestamp; ids (UUIDv7, time-ordered) break ties so the order is stable.
  return a._ms !== b._ms ? a._ms > b._ms : a.id > b.id;
}

export class EventWindow {
  constructor() {
    this.clear();
  }

  clear() {
    this.order = []; // ids, newest first
    this.byId = new Map();
  }

  get size() {
    return this.order.length;
  }

  get oldestId() {
    return this.order.at(-1);
  }

  has(id) {
    return this.byId.has(id);
  }

  get(id) {
    return this.byId.get(id);
  }

  /** Add older events at the end (a page of history, already newest first). Returns those added. */
  appendOlder(events) {
    const added = [];
    for (const event of events) {
      if (this.byId.has(event.id)) continue;
      this.byId.set(event.id, event);
      this.order.push(event.id);
      added.push(event);
    }
    return added;
  }

  /**
   * Insert an event at its place by time. When the window does not reach back that far (`complete` is
   * false and the event is older than the oldest held), it is not inserted: scrolling down will load it.
   * Returns true when inserted.
   */
  insert(event, complete) {
    const order = this.order;
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (newer(this.byId.get(order[mid]), event)) lo = mid + 1;
      else hi = mid;
    }
    if (lo === order.length && !complete && order.length > 0) return false;
    order.splice(lo, 0, event.id);
    this.byId.set(event.id, event);
    return true;
  }

  replace(event) {
    this.byId.set(event.id, event);
  }

  remove(id) {
    if (!this.byId.delete(id)) return false;
    const index = this.order.indexOf(id);
    if (index >= 0) this.order.splice(index, 1);
    return true;
  }

  /** Drop from the bottom (older) beyond `max`; returns the dropped ids. */
  trimOldest(max = MAX_CARDS) {
    const dropped = this.order.splice(max);
    for (const id of dropped) this.byId.delete(id);
    return dropped;
  }

  /** Drop from the top (newer) beyond `max`; returns the dropped ids. */
  trimNewest(max = MAX_CARDS) {
    const dropped = this.order.splice(0, Math.max(0, this.order.length - max));
    for (const id of dropped) this.byId.delete(id);
    return dropped;
  }
}
