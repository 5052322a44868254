"""The example property-management MCP server: `python -m activity_feed.examples.property_mcp`."""

from activity_feed.examples.property_mcp.server import SERVER_NAME, build_server

__all__ = ["SERVER_NAME", "build_server"]
