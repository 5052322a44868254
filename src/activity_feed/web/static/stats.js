// The stats view over a window (15 minutes to 7 days): a chart of calls, errors and durations over time
// (/activities/stats/timeline), then per tool count, error rate, p50 and p95 (/activities/stats). The
// slowest and the most failing tools come first, because those are the ones somebody needs to look at.

import { fetchStatsTimeline, fetchStatsWindow } from "./api.js";
import { StatsChart } from "./chart.js";
import { duration, el, percent } from "./format.js";

/** The window choices (the API's `since` durations) as words. */
export const WINDOW_LABELS = {
  "15m": "the last 15 minutes",
  "1h": "the last hour",
  "24h": "the last 24 hours",
  "7d": "the last 7 days",
};

const COLUMNS = [
  { key: "tool_name", label: "Tool", numeric: false },
  { key: "count", label: "Calls", numeric: true },
  { key: "error_rate", label: "Error rate", numeric: true },
  { key: "p50_duration_ms", label: "p50", numeric: true },
  { key: "p95_duration_ms", label: "p95", numeric: true },
];

export class StatsPanel {
  constructor({ root, chart, scope, onPickTool }) {
    this.root = root;
    this.chart = new StatsChart(chart);
    this.scope = scope;
    this.onPickTool = onPickTool;
    this.rows = [];
    this.truncated = false;
    this.window = "1h";
    this.sort = { key: "p95_duration_ms", descending: true };
    this.loading = null;
    this.generation = 0;
  }

  /** Load the window's stats and chart (`since` is a duration such as `1h`; the current one if omitted). */
  async load(since = this.window) {
    if (since !== this.window) {
      // A new window: whatever is in flight answers the old question.
      this.window = since;
      this.loading = null;
    }
    if (this.loading) return this.loading;
    const generation = ++this.generation;
    const label = WINDOW_LABELS[since] ?? since;
    this.loading = Promise.allSettled([fetchStatsWindow({ since }), fetchStatsTimeline({ since })])
      .then(([stats, timeline]) => {
        if (generation !== this.generation) return;
        this.scope.textContent = `Every tool over ${label}; refreshed while open.`;
        if (timeline.status === "fulfilled") this.chart.show(timeline.value, label);
        else this.chart.root.replaceChildren(el("p", { class: "empty-note", text: `Could not load the chart: ${timeline.reason.message}` }));
        if (stats.status === "fulfilled") {
          this.rows = stats.value.rows;
          this.truncated = stats.value.truncated;
          this.render();
        } else {
          this.root.replaceChildren(el("p", { class: "empty-note", text: `Could not load stats: ${stats.reason.message}` }));
        }
      })
      .finally(() => {
        if (generation === this.generation) this.loading = null;
      });
    return this.loading;
  }

  render() {
    const rows = this.rows;
    if (rows.length === 0) {
      this.root.replaceChildren(el("p", { class: "empty-note", text: `No calls in ${WINDOW_LABELS[this.window] ?? "this window"}.` }));
      return;
    }
    const total = rows.reduce((n, r) => n + r.count, 0);
    const errors = rows.reduce((n, r) => n + r.errors, 0);
    const p95s = rows.map((r) => r.p95_duration_ms).filter((v) => v !== null);
    const slowest = [...rows].filter((r) => r.p95_duration_ms !== null).sort((a, b) => b.p95_duration_ms - a.p95_duration_ms).slice(0, 5);
    const failing = [...rows].filter((r) => r.errors > 0).sort((a, b) => b.error_rate - a.error_rate || b.errors - a.errors).slice(0, 5);
    const maxP95 = Math.max(1, ...p95s);

    this.root.replaceChildren(
      el(
        "div",
        { class: "kpis" },
        kpi("Calls", total.toLocaleString()),
        kpi("Tools", rows.length.toLocaleString()),
        kpi("Errors", errors.toLocaleString()),
        kpi("Error rate", percent(total ? errors / total : 0)),
      ),
      el(
        "div",
        { class: "rankings" },
        ranking("Slowest (p95)", slowest, (r) => duration(r.p95_duration_ms), (r) => r.p95_duration_ms / maxP95, "slow", this.onPickTool),
        ranking("Most failing", failing, (r) => `${percent(r.error_rate)} · ${r.errors}`, (r) => r.error_rate, "fail", this.onPickTool),
      ),
      this.#table(),
    );
    if (this.truncated) {
      this.root.append(
        el("p", { class: "chart-note", text: "Counted from the newest events of the window only: it holds more than the service counts at once." }),
      );
    }
  }

  #table() {
    const { key, descending } = this.sort;
    const sorted = [...this.rows].sort((a, b) => {
      const x = a[key];
      const y = b[key];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1; // tools without durations sink, either direction
      if (y === null || y === undefined) return -1;
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return descending ? -order : order;
    });
    const head = el(
      "tr",
      {},
      ...COLUMNS.map((c) => {
        const active = c.key === key;
        return el(
          "th",
          { scope: "col", class: c.numeric ? "num" : "", "aria-sort": active ? (descending ? "descending" : "ascending") : "none" },
          el(
            "button",
            {
              type: "button",
              class: "sort",
              onclick: () => {
                this.sort = { key: c.key, descending: active ? !descending : c.numeric };
                this.render();
                this.root.querySelector(`th[aria-sort]:not([aria-sort="none"]) button`)?.focus();
              },
            },
            c.label,
            el("span", { class: "sort-mark", "aria-hidden": "true", text: active ? (descending ? "↓" : "↑") : "" }),
          ),
        );
      }),
    );
    const body = sorted.map((r) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, toolButton(r, this.onPickTool)),
        el("td", { class: "num", text: r.count.toLocaleString() }),
        el("td", { class: `num ${r.error_rate > 0 ? "has-errors" : ""}`, text: percent(r.error_rate) }),
        el("td", { class: "num", text: duration(r.p50_duration_ms) || "—" }),
        el("td", { class: "num", text: duration(r.p95_duration_ms) || "—" }),
      ),
    );
    return el(
      "div",
      { class: "table-wrap glass" },
      el("table", { class: "stats-table" }, el("caption", { class: "visually-hidden", text: "Per-tool statistics" }), el("thead", {}, head), el("tbody", {}, ...body)),
    );
  }
}

function kpi(label, value) {
  return el("div", { class: "kpi glass" }, el("span", { class: "kpi-value", text: value }), el("span", { class: "kpi-label", text: label }));
}

function toolButton(r, onPick) {
  const name = r.tool_name ?? "(no tool name)";
  if (r.tool_name === null) return el("span", { class: "muted", text: name });
  return el("button", { type: "button", class: "link", title: `Show ${name} in the feed`, onclick: () => onPick(r.tool_name) }, name);
}

function ranking(title, rows, value, fraction, kind, onPick) {
  return el(
    "section",
    { class: "ranking glass" },
    el("h3", { text: title }),
    rows.length === 0
      ? el("p", { class: "muted", text: kind === "fail" ? "No failures. Nice." : "No durations yet." })
      : el(
          "ol",
          {},
          ...rows.map((r) =>
            el(
              "li",
              {},
              el("span", { class: "rank-name" }, toolButton(r, onPick)),
              el("span", { class: "rank-value", text: value(r) }),
              el("span", { class: `rank-bar rank-${kind}`, style: `--f:${Math.max(0.02, Math.min(1, fraction(r))).toFixed(3)}`, "aria-hidden": "true" }),
            ),
          ),
        ),
  );
}
