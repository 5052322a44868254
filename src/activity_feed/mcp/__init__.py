"""MCP integration: `instrument(server)` records the MCP conversation of an official-SDK (mcp 2.x) or
fastmcp server, `track_tool` the tool calls of anything else. Importing this package imports neither
the SDK nor fastmcp (nor the service's web and database layers); `activity_feed.mcp.fastmcp` needs the
`fastmcp` extra.
"""

from activity_feed.mcp.instrument import instrument
from activity_feed.mcp.messages import RECORD_MODES, RecordMode
from activity_feed.mcp.middleware import ActivityFeedServerMiddleware
from activity_feed.mcp.recorder import ActivityClient, CallRecorder
from activity_feed.mcp.trace import parse_traceparent
from activity_feed.mcp.track import track_tool

__all__ = [
    "RECORD_MODES",
    "ActivityClient",
    "ActivityFeedServerMiddleware",
    "CallRecorder",
    "RecordMode",
    "instrument",
    "parse_traceparent",
    "track_tool",
]
