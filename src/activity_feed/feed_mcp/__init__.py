"""The feed's own MCP server: read-only tools that let an AI assistant question a running feed ("which of
my tools failed in the last hour, and why?"), over stdio (`activity-feed mcp`) or at `/mcp` of the
service. Not to be confused with `activity_feed.mcp`, which instruments the user's own servers.

`cli.py` imports without the `mcp` extra; `tools.py` and `server.py` need it.
"""

from __future__ import annotations

from importlib.util import find_spec


def available() -> bool:
    """Whether the `mcp` extra is installed (without importing it)."""
    return find_spec("mcp") is not None
