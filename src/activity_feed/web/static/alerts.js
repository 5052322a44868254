// The banner of the alerts that hold now. Loaded from `GET activities/alerts`, then kept current from
// the stream: every firing and resolution is an alert system event in the feed (`alert: <rule>`). A
// filtered stream may not carry them, so the list is also reloaded on reconnect and now and then.

import { fetchAlerts } from "./api.js";
import { el } from "./format.js";

const PREFIX = "alert: ";

const key = (rule, tool) => JSON.stringify([rule, tool ?? null]);

export class AlertBanner {
  constructor(root) {
    this.root = root;
    this.alerts = new Map();
  }

  async load() {
    try {
      const list = await fetchAlerts();
      this.alerts = new Map(list.map((a) => [key(a.rule, a.tool), a]));
      this.render();
    } catch {
      // Keep what is shown: the next reload or stream message brings it up to date.
    }
  }

  /** A stream message: an alert's system event changes the banner; anything else is ignored. */
  receive(message) {
    const event = message.event;
    if (!event || event.event_type !== "system_event" || !(event.tool_name ?? "").startsWith(PREFIX)) return;
    const d = event.data ?? {};
    if (typeof d.rule !== "string") return;
    if (d.state === "firing") {
      const { rule, kind, value, threshold, text } = d;
      const tool = d.tool ?? null;
      this.alerts.set(key(rule, tool), { rule, tool, kind, value, threshold, since: d.at, text });
    } else if (d.state === "resolved") {
      this.alerts.delete(key(d.rule, d.tool));
    } else return;
    this.render();
  }

  render() {
    const list = [...this.alerts.values()].sort((a, b) => String(a.since).localeCompare(String(b.since)));
    this.root.hidden = list.length === 0;
    const title = list.length === 1 ? "1 alert holds" : `${list.length} alerts hold`;
    // The webhook's text without its "[firing] " tag: everything in the banner is firing.
    const items = list.map((a) => el("li", { text: (a.text ?? a.rule).replace(/^\[firing\] /, "") }));
    this.root.replaceChildren(
      el("strong", { class: "alerts-title", text: title }),
      el("ul", { class: "alerts-list" }, ...items),
    );
  }
}
