"""MCP integration: `instrument(server)` for the official SDK (mcp 2.x) and fastmcp, `track_tool` for
anything else. Importing this package imports neither the SDK nor fastmcp (nor the service's web and
database layers); `activity_feed.mcp.fastmcp` needs the `fastmcp` extra.
"""

from activity_feed.mcp.instrument import instrument
from activity_feed.mcp.middleware import ActivityFeedServerMiddleware
from activity_feed.mcp.recorder import ActivityClient, CallRecorder
from activity_feed.mcp.track import track_tool

__all__ = ["ActivityClient", "ActivityFeedServerMiddleware", "CallRecorder", "instrument", "track_tool"]
