// Polite screen-reader announcements of new events, throttled: a burst of 200 events a second must
// become one short sentence every few seconds, not a queue of hundreds of utterances.

export class Announcer {
  constructor(region) {
    this.region = region;
    this.count = 0;
    this.errors = 0;
    this.latest = null;
  }

  add(event) {
    this.count += 1;
    if (event.status === "error") this.errors += 1;
    this.latest = event.tool_name ?? event.event_type;
  }

  flush() {
    if (this.count === 0) return;
    const n = this.count;
    let text = n === 1 ? `New event: ${this.latest}` : `${n} new events, latest ${this.latest}`;
    if (this.errors > 0) text += `, ${this.errors} ${this.errors === 1 ? "error" : "errors"}`;
    this.region.textContent = `${text}.`;
    this.count = 0;
    this.errors = 0;
    this.latest = null;
  }
}
