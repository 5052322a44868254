// What an MCP event did, read from its `data.mcp`: a line of chips on the card (method, resource or
// prompt, direction, cancellation, JSON-RPC error code, client) and facts in the expanded details.
// `data` comes from whoever logged the event, so every value is checked for its type before use and
// only ever set as text.

const MCP_TYPES = new Set(["mcp_request", "mcp_notification"]);

/** The event's `data.mcp` object, or null. */
export function mcpOf(event) {
  const mcp = event.data?.mcp;
  return mcp && typeof mcp === "object" && !Array.isArray(mcp) ? mcp : null;
}

export function isMcpEvent(event) {
  return MCP_TYPES.has(event.event_type) || mcpOf(event) !== null;
}

function text(value) {
  if (typeof value === "string") return value.trim() || null;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return null;
}

/** `{"name", "version"}` as "name version", or null. */
function nameVersion(value) {
  if (!value || typeof value !== "object") return null;
  const name = text(value.name);
  const version = text(value.version);
  return name ? (version ? `${name} ${version}` : name) : null;
}

export function isCancelled(event) {
  return typeof event.error_message === "string" && event.error_message.toLowerCase().startsWith("cancelled");
}

function methodOf(event, mcp) {
  return text(mcp?.method) ?? (MCP_TYPES.has(event.event_type) ? text(event.tool_name)?.split(" ")[0] : null);
}

/** The prompt of a prompts/get: `data.mcp.target`, else what follows the method in the tool name. */
function promptName(event, mcp) {
  const target = text(mcp?.target);
  if (target) return target;
  const name = text(event.tool_name);
  return name?.startsWith("prompts/get ") ? name.slice("prompts/get ".length).trim() || null : null;
}

/**
 * The chips for the card's summary line, `[{kind, text, title}]`; empty for an event that is not MCP.
 * What the title (the tool name) already says is not repeated.
 */
export function mcpChips(event) {
  if (!isMcpEvent(event)) return [];
  const mcp = mcpOf(event);
  const chips = [];
  const title = text(event.tool_name) ?? "";
  const method = methodOf(event, mcp);
  if (method && !title.startsWith(method)) chips.push({ kind: "method", text: method, title: "MCP method" });
  const target = text(mcp?.target);
  if (method === "prompts/get") {
    const prompt = promptName(event, mcp);
    if (prompt) chips.push({ kind: "prompt", text: `prompt ${prompt}`, title: `Prompt: ${prompt}` });
  } else if (method?.startsWith("resources/") && target) {
    chips.push({ kind: "resource", text: target, title: `Resource: ${target}` });
  } else if (target && target !== title) {
    chips.push({ kind: "target", text: target, title: `Target: ${target}` });
  }
  if (mcp?.direction === "server_to_client") {
    chips.push({ kind: "direction", text: "server → client", title: "Sent by the server to the client" });
  }
  if (isCancelled(event)) chips.push({ kind: "cancelled", text: "cancelled", title: "The request was cancelled" });
  const code = text(mcp?.error?.code);
  if (code) {
    const message = text(mcp.error.message);
    chips.push({ kind: "code", text: `JSON-RPC ${code}`, title: message ? `JSON-RPC error ${code}: ${message}` : `JSON-RPC error ${code}` });
  }
  const client = nameVersion(mcp?.client);
  const clientName = text(mcp?.client?.name);
  // The card's meta line shows user_source, which is the client unless somebody set another one.
  if (client && !(event.user_source ?? "").startsWith(clientName)) {
    chips.push({ kind: "client", text: client, title: `MCP client: ${client}` });
  }
  return chips;
}

const DIRECTIONS = { client_to_server: "client → server", server_to_client: "server → client" };

/** `[label, value]` rows for the expanded card; empty when the event carries no `data.mcp`. */
export function mcpFacts(event) {
  const mcp = mcpOf(event);
  if (!mcp) return [];
  const method = methodOf(event, mcp);
  const target = text(mcp.target);
  const targetLabel =
    method === "prompts/get" ? "Prompt" : method?.startsWith("resources/") ? "Resource" : method === "tools/call" ? "Tool" : "Target";
  const code = text(mcp.error?.code);
  const errorMessage = text(mcp.error?.message);
  const rows = [
    ["Method", method],
    [targetLabel, target],
    ["Direction", DIRECTIONS[mcp.direction] ?? null],
    ["Client", nameVersion(mcp.client)],
    ["Server", nameVersion(mcp.server)],
    ["Transport", text(mcp.transport)],
    ["Protocol", text(mcp.protocol_version)],
    ["Request id", text(mcp.request_id)],
    ["JSON-RPC error", code ? (errorMessage ? `${code} · ${errorMessage}` : code) : null],
    ["Trace", text(mcp.trace_id)],
    ["Recorded by", text(mcp.source)],
  ];
  return rows.filter(([, value]) => value !== null && value !== undefined);
}
