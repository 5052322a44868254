"""The `proxy` benchmark's Python MCP server, for machines without Node.js: `empty` returns nothing,
`blob` a text of `bytes` bytes. `python -m bench.proxy_server` serves it over stdio;
`python -m bench.proxy_server http PORT [json]` over streamable HTTP at /mcp (SSE answers, or JSON)."""

from __future__ import annotations

import logging
import sys


def main() -> None:
    # Before the server exists: otherwise the SDK installs its slow rich traceback handler.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench-proxy", version="1.0")

    @server.tool()
    def empty() -> str:
        """Nothing."""
        return ""

    @server.tool()
    def blob(bytes: int) -> str:
        """A text of `bytes` bytes."""
        return "x" * bytes

    if sys.argv[1:2] == ["http"]:
        import uvicorn

        app = server.streamable_http_app(json_response=sys.argv[3:4] == ["json"])
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
