// The stats chart: calls and errors per bucket as bars, p50 and p95 durations as lines, over the window
// of /activities/stats/timeline. Inline SVG drawn by hand at the container's pixel width (text is never
// stretched). Each series is one <path>, so a 7-day window of a thousand buckets is four elements, not
// thousands. A title and a description summarise it for screen readers; the pointer or the arrow keys
// read out one bucket.

import { duration, el } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 240;
const MARGIN = { top: 14, right: 60, bottom: 30, left: 48 };
const X_TICK_SPACING = 100; // pixels per time label at most, so labels never overlap
let chartCount = 0;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  node.append(...children.filter(Boolean));
  return node;
}

/**
 * An axis from 0 past `max` in about four steps people can read (1, 2, 2.5 or 5 times a power of ten);
 * whole steps for counts.
 */
function niceScale(max, { integer = false } = {}) {
  const raw = Math.max(max, integer ? 1 : Number.EPSILON) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const multiples = integer && power < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  let step = multiples.map((m) => m * power).find((v) => v >= raw) ?? 10 * power;
  if (integer) step = Math.max(1, Math.round(step));
  const ticks = Math.max(1, Math.ceil(max / step));
  return { max: ticks * step, step, ticks };
}

function compact(n) {
  return n >= 10_000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(Math.round(n * 10) / 10);
}

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayClock = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });

/** "per minute", "per 7 minutes". */
export function bucketLabel(seconds) {
  const minutes = seconds / 60;
  if (minutes === 1) return "per minute";
  return Number.isInteger(minutes) ? `per ${minutes} minutes` : `per ${seconds} seconds`;
}

export class StatsChart {
  /** @param {HTMLElement} root  the chart's container; it is sized by CSS, the chart follows its width */
  constructor(root) {
    this.root = root;
    this.data = null;
    this.label = "";
    this.cursor = null; // the bucket read out, by index
    this.id = `chart-${++chartCount}`;
    this.width = 0;
    new ResizeObserver(() => {
      if (this.data && this.root.clientWidth !== this.width) this.render();
    }).observe(root);
  }

  /** Show a timeline answer; `label` names the window ("the last hour"). */
  show(data, label) {
    this.data = data;
    this.label = label;
    this.cursor = null;
    this.render();
  }

  render() {
    const data = this.data;
    const buckets = (data?.buckets ?? []).map((b) => ({ ...b, _ms: Date.parse(b.start) }));
    const calls = buckets.reduce((n, b) => n + b.calls, 0);
    if (calls === 0) {
      this.root.replaceChildren(el("p", { class: "empty-note chart-empty", text: `No calls in ${this.label}.` }));
      this.width = this.root.clientWidth;
      return;
    }
    this.width = this.root.clientWidth;
    const width = Math.max(280, this.width || 800);
    const plot = { x: MARGIN.left, y: MARGIN.top, w: width - MARGIN.left - MARGIN.right, h: HEIGHT - MARGIN.top - MARGIN.bottom };
    const per = bucketLabel(data.bucket_seconds ?? 60);
    const callScale = niceScale(Math.max(...buckets.map((b) => b.calls)), { integer: true });
    const durations = buckets.flatMap((b) => [b.p50_ms, b.p95_ms]).filter((v) => v !== null && v !== undefined);
    const msScale = niceScale(Math.max(1, ...durations));
    const maxCalls = callScale.max;
    const maxMs = msScale.max;
    const step = plot.w / buckets.length;
    const x = (i) => plot.x + i * step;
    const yCalls = (n) => plot.y + plot.h - (n / maxCalls) * plot.h;
    const yMs = (ms) => plot.y + plot.h - (ms / maxMs) * plot.h;
    const gap = step > 4 ? 1 : 0;

    const titleId = `${this.id}-title`;
    const descId = `${this.id}-desc`;
    const chart = svg(
      "svg",
      {
        // Buckets a few pixels wide: thinner lines, or a day of noisy percentiles hides the bars.
        class: step < 3 ? "chart dense" : "chart",
        width,
        height: HEIGHT,
        viewBox: `0 0 ${width} ${HEIGHT}`,
        role: "img",
        tabindex: 0,
        "aria-labelledby": titleId,
        "aria-describedby": descId,
      },
      svg("title", { id: titleId, text: `Calls, errors and durations ${per} over ${this.label}` }),
      svg("desc", { id: descId, text: describe(buckets, per, this.label) }),
    );

    // Grid and the calls axis (left); the duration axis (right) has its own ticks at its own heights.
    const grid = svg("g", { class: "chart-grid", "aria-hidden": "true" });
    for (let i = 0; i <= callScale.ticks; i++) {
      const value = callScale.step * i;
      const y = yCalls(value);
      grid.append(
        svg("line", { x1: plot.x, x2: plot.x + plot.w, y1: y, y2: y }),
        svg("text", { class: "chart-tick", x: plot.x - 6, y: y + 4, "text-anchor": "end", text: compact(value) }),
      );
    }
    for (let i = 0; i <= msScale.ticks; i++) {
      const value = msScale.step * i;
      grid.append(
        svg("text", { class: "chart-tick", x: plot.x + plot.w + 6, y: yMs(value) + 4, "text-anchor": "start", text: i === 0 ? "0" : duration(value) }),
      );
    }
    // Time axis (bottom).
    const first = buckets[0]._ms;
    const last = buckets.at(-1)._ms + (data.bucket_seconds ?? 60) * 1000;
    const format = last - first > 36 * 3600_000 ? dayClock : clock;
    const xTicks = Math.max(1, Math.min(6, Math.floor(plot.w / (format === dayClock ? 1.4 * X_TICK_SPACING : X_TICK_SPACING))));
    for (let i = 0; i <= xTicks; i++) {
      const ms = first + ((last - first) * i) / xTicks;
      const tx = plot.x + (plot.w * i) / xTicks;
      const anchor = i === 0 ? "start" : i === xTicks ? "end" : "middle";
      grid.append(
        svg("line", { class: "chart-xtick", x1: tx, x2: tx, y1: plot.y + plot.h, y2: plot.y + plot.h + 4 }),
        svg("text", { class: "chart-tick", x: tx, y: HEIGHT - 10, "text-anchor": anchor, text: format.format(ms) }),
      );
    }
    grid.append(
      svg("text", { class: "chart-axis-title", transform: `translate(12 ${plot.y + plot.h / 2}) rotate(-90)`, "text-anchor": "middle", text: `calls ${per}` }),
      svg("text", { class: "chart-axis-title", transform: `translate(${width - 8} ${plot.y + plot.h / 2}) rotate(90)`, "text-anchor": "middle", text: "duration" }),
    );

    // Bars: errors at the foot of each bar, the other calls above them; one path per series.
    let okPath = "";
    let errorPath = "";
    const w = Math.max(0.5, step - gap);
    buckets.forEach((b, i) => {
      if (b.calls <= 0) return;
      const errors = Math.min(b.errors, b.calls);
      const top = yCalls(b.calls);
      const middle = yCalls(errors);
      const base = yCalls(0);
      if (b.calls > errors) okPath += `M${x(i).toFixed(2)} ${middle.toFixed(2)}V${top.toFixed(2)}h${w.toFixed(2)}V${middle.toFixed(2)}Z`;
      if (errors > 0) errorPath += `M${x(i).toFixed(2)} ${base.toFixed(2)}V${middle.toFixed(2)}h${w.toFixed(2)}V${base.toFixed(2)}Z`;
    });
    const bars = svg(
      "g",
      { "aria-hidden": "true" },
      okPath && svg("path", { class: "chart-calls", d: okPath }),
      errorPath && svg("path", { class: "chart-errors", d: errorPath }),
    );

    // Lines through the middle of each bucket; a bucket without calls breaks the line.
    const line = (key, cls) => {
      let d = "";
      let open = false;
      buckets.forEach((b, i) => {
        const value = b[key];
        if (value === null || value === undefined) {
          open = false;
          return;
        }
        const px = (x(i) + step / 2).toFixed(2);
        const py = yMs(value).toFixed(2);
        // A lone point is a zero-length segment: with round caps it shows as a dot.
        d += open ? `L${px} ${py}` : `M${px} ${py}h0.01`;
        open = true;
      });
      return d ? svg("path", { class: `chart-line ${cls}`, d }) : null;
    };
    const lines = svg("g", { "aria-hidden": "true" }, line("p50_ms", "chart-p50"), line("p95_ms", "chart-p95"));

    // The bucket read out is marked behind the bars.
    const marker = svg("rect", { class: "chart-cursor", y: plot.y, height: plot.h, width: Math.max(1, step), visibility: "hidden", "aria-hidden": "true" });
    chart.append(grid, marker, bars, lines);

    const readout = el("p", { class: "chart-readout", id: `${this.id}-readout`, "aria-live": "polite" });
    const legend = el(
      "ul",
      { class: "chart-legend", "aria-label": "Legend" },
      legendItem("calls", "Calls"),
      legendItem("errors", "Errors"),
      legendItem("p50", "p50 duration"),
      legendItem("p95", "p95 duration"),
    );
    const notes = [];
    if (data.truncated) {
      notes.push(el("p", { class: "chart-note", text: `Counted from the newest ${data.events.toLocaleString()} events of the window only.` }));
    }
    this.root.replaceChildren(legend, chart, readout, ...notes);

    const show = (index) => {
      if (index === null) {
        marker.setAttribute("visibility", "hidden");
        readout.textContent = "";
        return;
      }
      this.cursor = index;
      const b = buckets[index];
      marker.setAttribute("x", x(index).toFixed(2));
      marker.setAttribute("visibility", "visible");
      readout.textContent = bucketText(b, format);
    };
    chart.addEventListener("pointermove", (e) => {
      const box = chart.getBoundingClientRect();
      const index = Math.floor(((e.clientX - box.left) * (width / box.width) - plot.x) / step);
      show(index >= 0 && index < buckets.length ? index : null);
    });
    chart.addEventListener("pointerleave", () => show(null));
    chart.addEventListener("blur", () => show(null));
    chart.addEventListener("keydown", (e) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -Infinity, End: Infinity };
      if (!(e.key in moves)) return;
      e.preventDefault();
      const from = this.cursor ?? (moves[e.key] > 0 ? -1 : buckets.length);
      show(Math.max(0, Math.min(buckets.length - 1, from + moves[e.key])));
    });
  }
}

function legendItem(kind, label) {
  return el("li", { class: `legend-${kind}` }, el("span", { class: "swatch", "aria-hidden": "true" }), label);
}

function bucketText(b, format) {
  const parts = [format.format(b._ms), `${b.calls.toLocaleString()} ${b.calls === 1 ? "call" : "calls"}`, `${b.errors.toLocaleString()} ${b.errors === 1 ? "error" : "errors"}`];
  if (b.p50_ms !== null && b.p50_ms !== undefined) parts.push(`p50 ${duration(b.p50_ms)}`);
  if (b.p95_ms !== null && b.p95_ms !== undefined) parts.push(`p95 ${duration(b.p95_ms)}`);
  return parts.join(" · ");
}

/** One sentence a screen reader can read instead of the picture. */
function describe(buckets, per, label) {
  const calls = buckets.reduce((n, b) => n + b.calls, 0);
  const errors = buckets.reduce((n, b) => n + b.errors, 0);
  const busiest = buckets.reduce((a, b) => (b.calls > a.calls ? b : a));
  const p95s = buckets.filter((b) => b.p95_ms !== null && b.p95_ms !== undefined);
  const worst = p95s.length ? p95s.reduce((a, b) => (b.p95_ms > a.p95_ms ? b : a)) : null;
  let text = `${calls.toLocaleString()} calls and ${errors.toLocaleString()} errors in ${label}. `;
  text += `Busiest: ${busiest.calls.toLocaleString()} calls ${per} at ${clock.format(busiest._ms)}.`;
  if (worst) text += ` Highest p95: ${duration(worst.p95_ms)} at ${clock.format(worst._ms)}.`;
  return text;
}
