// REST calls to the feed service. URLs are resolved against the page's own address, so the page works
// wherever the service is served (another port, a reverse proxy prefix).

import { askForToken, token } from "./token.js";

export const PAGE_SIZE = 100;

function url(path, params = {}) {
  const u = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") u.searchParams.set(key, value);
  }
  return u;
}

async function fetchWithToken(u, signal) {
  for (;;) {
    const sent = token();
    const headers = { Accept: "application/json" };
    if (sent) headers.Authorization = `Bearer ${sent}`;
    const response = await fetch(u, { signal, headers });
    if (response.status !== 401) return response;
    // Another request may have got a token from the dialog while this one was in flight: retry with it.
    if (token() !== sent) continue;
    if ((await askForToken(sent !== null)) === null) return response;
  }
}

async function getJSON(u, signal) {
  return (await getResponse(u, signal)).json();
}

/** The response of a GET that answered 2xx; anything else throws with the API's message. */
async function getResponse(u, signal) {
  const response = await fetchWithToken(u, signal);
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      // Not JSON: the status text says enough.
    }
    throw new Error(`${response.status} ${detail}`);
  }
  return response;
}

/** Newest first; `server` holds the filters the API applies itself (see filters.js). */
export function fetchRecent(server, { before, limit = PAGE_SIZE, signal } = {}) {
  return getJSON(url("activities/recent", { ...server, before, limit }), signal);
}

export function fetchEvent(id, signal) {
  return getJSON(url(`activities/${encodeURIComponent(id)}`), signal);
}

export function fetchStats({ since, session_id, event_type, signal } = {}) {
  return getJSON(url("activities/stats", { since, session_id, event_type }), signal);
}

/**
 * Per-tool stats with the window they covered: `{rows, truncated}` (truncated: only the newest events
 * of the window were counted; the API says so in a header).
 */
export async function fetchStatsWindow({ since, session_id, event_type, signal } = {}) {
  const response = await getResponse(url("activities/stats", { since, session_id, event_type }), signal);
  return { rows: await response.json(), truncated: response.headers.get("X-Stats-Truncated") === "true" };
}

/** Calls, errors, p50 and p95 per bucket of the window, every bucket in time order. */
export function fetchStatsTimeline({ since, session_id, event_type, tool_name, signal } = {}) {
  return getJSON(url("activities/stats/timeline", { since, session_id, event_type, tool_name }), signal);
}

/** The alerts that hold now, oldest first (empty without an alerts file). */
export function fetchAlerts(signal) {
  return getJSON(url("activities/alerts"), signal);
}

export const SESSIONS_PAGE = 50;

/** Sessions, most recently active first; `before` is the session_id of the last one already shown. */
export function fetchSessions({ before, limit = SESSIONS_PAGE, signal } = {}) {
  return getJSON(url("activities/sessions", { before, limit }), signal);
}

/** The WebSocket URL of the stream, on the same host and path prefix as the page. */
export function streamURL(params) {
  // The token rides in the query because browsers cannot set WebSocket headers; the server redacts it
  // from its logs.
  const u = url("activities/ws", { ...params, token: token() });
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}
