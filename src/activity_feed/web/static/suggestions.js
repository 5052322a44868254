// Suggestions for the tool and client inputs (their <datalist>s): every tool from stats, every client
// from the session list, and whatever history and the stream bring. Bounded, and each value once.

import { fetchSessions, fetchStats } from "./api.js";
import { el } from "./format.js";

const MAX_SUGGESTIONS = 200;

export class Suggestions {
  constructor({ tools, clients }) {
    this.lists = { tools, clients };
    this.seen = { tools: new Set(), clients: new Set() };
  }

  /** Fill both lists from the API once; a failure only means fewer suggestions. */
  load() {
    fetchStats()
      .then((rows) => rows.forEach((r) => this.add("tools", r.tool_name)))
      .catch(() => {}); // the stats view reports its own errors
    fetchSessions({ limit: MAX_SUGGESTIONS })
      .then((sessions) => this.addSessions(sessions))
      .catch(() => {}); // the Sessions view reports its own errors
  }

  addEvent(event) {
    if (!event) return;
    this.add("tools", event.tool_name);
    this.add("clients", event.user_source);
  }

  addSessions(sessions) {
    for (const session of sessions) this.add("clients", session.user_source);
  }

  add(kind, value) {
    const seen = this.seen[kind];
    if (!value || seen.has(value) || seen.size >= MAX_SUGGESTIONS) return;
    seen.add(value);
    this.lists[kind].append(el("option", { value }));
  }
}
