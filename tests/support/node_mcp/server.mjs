// A small MCP server on the official TypeScript SDK, over stdio: what the proxy runs in tests and in the
// benchmark as a server that is not Python. Tools: `search` (echoes its query), `fail` (an isError
// result), `empty` (an empty result), `blob` (a text of `bytes` bytes); a resource `note://{id}`
// (unknown ids are a JSON-RPC error) and a prompt `greet`.
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "node-notes", version: "1.0.0" });
const notes = { "1": "buy milk", "2": "call the plumber" };

server.registerTool(
  "search",
  { description: "Find notes", inputSchema: { query: z.string() } },
  async ({ query }) => ({ content: [{ type: "text", text: `found ${query}` }] }),
);
server.registerTool("fail", { description: "Always fails" }, async () => ({
  content: [{ type: "text", text: "the node tool failed on purpose" }],
  isError: true,
}));
server.registerTool("empty", { description: "Returns nothing" }, async () => ({ content: [] }));
server.registerTool(
  "blob",
  { description: "Returns a text of the given size", inputSchema: { bytes: z.number().int() } },
  async ({ bytes }) => ({ content: [{ type: "text", text: "x".repeat(bytes) }] }),
);
server.registerResource(
  "note",
  new ResourceTemplate("note://{id}", { list: undefined }),
  { description: "One note" },
  async (uri, { id }) => {
    if (!(id in notes)) {
      throw new Error(`no note ${id}`);
    }
    return { contents: [{ uri: uri.href, text: notes[id] }] };
  },
);
server.registerPrompt(
  "greet",
  { description: "Greets someone", argsSchema: { name: z.string() } },
  ({ name }) => ({ messages: [{ role: "user", content: { type: "text", text: `Say hello to ${name}` } }] }),
);

await server.connect(new StdioServerTransport());
