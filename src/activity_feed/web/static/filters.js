// Filters live in the URL's query so that a view can be bookmarked, shared and survives a reload.
// Each filter is applied where it is cheapest and still correct:
//   - history (/activities/recent) filters by event_type, status, tool_name, user_source, correlation_id;
//   - the stream filters only by event_type and tool_name. Both never change after an event is created,
//     while status does (pending -> success): a card must be able to leave or enter a status filter, so
//     the page receives every status and decides itself;
//   - the free-text search is always client-side (the API has no text search).
// `session_id` is not a feed filter in the form: the Sessions view uses it for one session's own feed,
// timeline and stream (history and stream both filter by it on the server).

export const EVENT_TYPES = [
  "tool_call",
  "tool_result",
  "api_request",
  "voice_command",
  "system_event",
  "mcp_request",
  "mcp_notification",
];
export const STATUSES = ["pending", "success", "error"];
export const VIEWS = ["feed", "sessions", "timeline", "stats"];
export const WINDOWS = [5, 15, 60];
// The stats view's windows, as the API's `since` durations.
export const STATS_WINDOWS = ["15m", "1h", "24h", "7d"];
const DEFAULT_STATS_WINDOW = "1h";

// URL key -> filter key. Short keys keep shared links readable.
const KEYS = {
  type: "event_type",
  status: "status",
  tool: "tool_name",
  source: "user_source",
  correlation: "correlation_id",
  q: "q",
};

export function emptyFilters() {
  return { event_type: "", status: "", tool_name: "", user_source: "", correlation_id: "", session_id: "", q: "" };
}

/**
 * Read the state (filters, view, timeline window, stats window, open session) from a URL. Unknown
 * values are ignored.
 */
export function readState(href = location.href) {
  const params = new URL(href).searchParams;
  const filters = emptyFilters();
  for (const [urlKey, key] of Object.entries(KEYS)) filters[key] = (params.get(urlKey) ?? "").trim();
  if (!EVENT_TYPES.includes(filters.event_type)) filters.event_type = "";
  if (!STATUSES.includes(filters.status)) filters.status = "";
  const view = VIEWS.includes(params.get("view")) ? params.get("view") : "feed";
  const minutes = Number(params.get("minutes"));
  const statsWindow = params.get("window");
  return {
    filters,
    view,
    minutes: WINDOWS.includes(minutes) ? minutes : 15,
    statsWindow: STATS_WINDOWS.includes(statsWindow) ? statsWindow : DEFAULT_STATS_WINDOW,
    // The open session belongs to the Sessions view only.
    session: view === "sessions" ? (params.get("session") ?? "").trim() : "",
  };
}

/**
 * Write the state into the address bar without a navigation: replaceState, since filters are not pages;
 * `push` adds a history entry instead (opening a session is, so Back returns to the list).
 */
export function writeState({ filters, view, minutes, statsWindow, session }, { push = false } = {}) {
  const u = new URL(location.href);
  for (const [urlKey, key] of Object.entries(KEYS)) {
    if (filters[key]) u.searchParams.set(urlKey, filters[key]);
    else u.searchParams.delete(urlKey);
  }
  if (view !== "feed") u.searchParams.set("view", view);
  else u.searchParams.delete("view");
  if (minutes !== 15) u.searchParams.set("minutes", String(minutes));
  else u.searchParams.delete("minutes");
  if (statsWindow && statsWindow !== DEFAULT_STATS_WINDOW) u.searchParams.set("window", statsWindow);
  else u.searchParams.delete("window");
  if (view === "sessions" && session) u.searchParams.set("session", session);
  else u.searchParams.delete("session");
  if (u.href === location.href) return;
  if (push) history.pushState(null, "", u);
  else history.replaceState(null, "", u);
}

export function historyParams(f) {
  return {
    event_type: f.event_type,
    status: f.status,
    tool_name: f.tool_name,
    user_source: f.user_source,
    correlation_id: f.correlation_id,
    session_id: f.session_id,
  };
}

export function streamParams(f) {
  return { event_type: f.event_type, tool_name: f.tool_name, session_id: f.session_id };
}

/** Does an event (in its latest state) pass every filter? Used for live events and the text search. */
export function matches(f, e) {
  if (f.event_type && e.event_type !== f.event_type) return false;
  if (f.status && e.status !== f.status) return false;
  if (f.tool_name && e.tool_name !== f.tool_name) return false;
  if (f.user_source && e.user_source !== f.user_source) return false;
  if (f.correlation_id && e.correlation_id !== f.correlation_id) return false;
  if (f.session_id && e.session_id !== f.session_id) return false;
  if (f.q) {
    const needle = f.q.toLowerCase();
    const hay = `${e.tool_name ?? ""}\n${e.error_message ?? ""}`.toLowerCase();
    if (!hay.includes(needle)) return false;
  }
  return true;
}

export function isActive(f) {
  return Object.values(f).some(Boolean);
}
