// Syntax-coloured, formatted JSON built from DOM nodes: every key and value goes through a text node,
// so nothing in an event's data can ever be interpreted as HTML.

const MAX_NODES = 5000; // a pathological `data` must not freeze the page when a card is opened

export function renderJSON(value) {
  const pre = document.createElement("pre");
  pre.className = "json";
  const budget = { left: MAX_NODES };
  write(pre, value, 0, budget);
  if (budget.left <= 0) pre.append(span("json-more", "\n… (truncated for display)"));
  return pre;
}

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

function write(out, value, depth, budget) {
  if (--budget.left <= 0) return;
  const pad = "  ".repeat(depth);
  if (value === null) out.append(span("json-null", "null"));
  else if (typeof value === "string") out.append(span("json-string", JSON.stringify(value)));
  else if (typeof value === "number") out.append(span("json-number", String(value)));
  else if (typeof value === "boolean") out.append(span("json-bool", String(value)));
  else if (Array.isArray(value)) {
    if (value.length === 0) return out.append(span("json-punct", "[]"));
    out.append(span("json-punct", "["));
    value.forEach((item, i) => {
      out.append(`\n${pad}  `);
      write(out, item, depth + 1, budget);
      if (i < value.length - 1) out.append(span("json-punct", ","));
    });
    out.append(`\n${pad}`, span("json-punct", "]"));
  } else {
    const entries = Object.entries(value);
    if (entries.length === 0) return out.append(span("json-punct", "{}"));
    out.append(span("json-punct", "{"));
    entries.forEach(([key, item], i) => {
      out.append(`\n${pad}  `, span("json-key", JSON.stringify(key)), span("json-punct", ": "));
      write(out, item, depth + 1, budget);
      if (i < entries.length - 1) out.append(span("json-punct", ","));
    });
    out.append(`\n${pad}`, span("json-punct", "}"));
  }
}
