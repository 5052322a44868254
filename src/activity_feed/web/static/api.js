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
  return response.json();
}

/** Newest first; `server` holds the filters the API applies itself (see filters.js). */
export function fetchRecent(server, { before, limit = PAGE_SIZE, signal } = {}) {
  return getJSON(url("activities/recent", { ...server, before, limit }), signal);
}

export function fetchEvent(id, signal) {
  return getJSON(url(`activities/${encodeURIComponent(id)}`), signal);
}

export function fetchStats({ since, signal } = {}) {
  return getJSON(url("activities/stats", { since }), signal);
}

/** The WebSocket URL of the stream, on the same host and path prefix as the page. */
export function streamURL(params) {
  // The token rides in the query because browsers cannot set WebSocket headers; the server redacts it
  // from its logs.
  const u = url("activities/ws", { ...params, token: token() });
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}
