// The live stream: one WebSocket, reconnected with exponential backoff and full jitter. Every reconnect
// passes `since=<last cursor>` so the server replays what was missed; without a cursor (nothing seen yet)
// or on `resync`, the owner reloads history instead, so no change is ever lost silently.

const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;

export class LiveStream {
  /**
   * @param {object} handlers
   * @param {(params: object) => string} handlers.urlFor  builds the URL from {since, ...filters}
   * @param {(message: object) => void} handlers.onMessage  every change message
   * @param {() => void} handlers.onResync  history must be reloaded
   * @param {(state: string, detail?: object) => void} handlers.onState  connecting | live | waiting | offline
   */
  constructor({ urlFor, onMessage, onResync, onState }) {
    this.urlFor = urlFor;
    this.onMessage = onMessage;
    this.onResync = onResync;
    this.onState = onState;
    this.cursor = null;
    this.params = {};
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.generation = 0; // a socket from an older generation (before a filter change) is ignored
    this.everOpened = false;
  }

  /** (Re)start with new server-side filters; the cursor is dropped because the filters changed. */
  start(params) {
    this.params = params;
    this.cursor = null;
    this.attempt = 0;
    this.everOpened = false;
    this.#open();
  }

  stop() {
    this.generation += 1;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    // Closing a socket that is still connecting makes Chromium log an error; close it once open.
    if (socket.readyState === WebSocket.CONNECTING) socket.addEventListener("open", () => socket.close(1000));
    else socket.close(1000);
  }

  #open() {
    this.stop();
    const generation = this.generation;
    const reconnecting = this.everOpened;
    const since = this.cursor;
    this.onState("connecting", { attempt: this.attempt });
    let socket;
    try {
      socket = new WebSocket(this.urlFor({ ...this.params, since: since ?? undefined }));
    } catch {
      this.#retry(generation);
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (generation !== this.generation) return;
      this.attempt = 0;
      this.everOpened = true;
      this.onState("live");
      // A reconnect without a cursor cannot be replayed: reload history so nothing is missed.
      if (reconnecting && since === null) this.onResync();
    });
    socket.addEventListener("message", (e) => {
      if (generation !== this.generation) return;
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return; // The server only sends JSON; anything else is not ours to interpret.
      }
      if (message.type === "resync") {
        this.cursor = null;
        this.onResync();
        return;
      }
      if (message.cursor !== undefined && message.cursor !== null) this.cursor = String(message.cursor);
      this.onMessage(message);
    });
    socket.addEventListener("close", () => {
      if (generation !== this.generation) return;
      this.#retry(generation);
    });
    // "error" is always followed by "close", which schedules the retry.
  }

  #retry(generation) {
    if (generation !== this.generation) return;
    this.attempt += 1;
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (this.attempt - 1));
    // Full jitter keeps many open tabs from reconnecting in step after a restart.
    const delay = Math.max(100, Math.round(Math.random() * ceiling));
    this.onState("waiting", { delay, attempt: this.attempt });
    this.timer = setTimeout(() => {
      if (generation === this.generation) this.#open();
    }, delay);
  }

  /** Skip the wait (the user asked, or the browser came back online). */
  reconnectNow() {
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) return;
    this.#open();
  }
}
