"""A calculator MCP server (the official SDK's `MCPServer`) over stdio, traced by OpenTelemetry's SDK and
exporting to wherever the environment says: `python -m tests.otlp.mcp_server`. No code of the feed runs
in it: what reaches the feed is what the SDK's own OpenTelemetry middleware records."""

from __future__ import annotations

import logging
import sys


def main() -> None:
    # Before MCPServer(): its own handler renders tracebacks slowly, and stdout is the protocol's.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    from mcp.server.mcpserver import MCPServer

    from tests.otlp.telemetry import configure_tracing

    provider = configure_tracing()
    server = MCPServer("otlp-calculator", version="2.0.1")

    @server.tool()
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool()
    def divide(a: float, b: float) -> float:
        if b == 0:
            raise ZeroDivisionError("cannot divide by zero")
        return a / b

    @server.prompt()
    def explain(operation: str) -> str:
        return f"Explain {operation} step by step."

    try:
        server.run("stdio")
    finally:
        provider.shutdown()  # exports what the batch processor holds


if __name__ == "__main__":
    main()
