"""The library side: `FeedClient`, the module-level helpers and a middleware sink that sends remotely."""

from activity_feed.client.default import (
    get_default_client,
    log_mcp_tool_call,
    set_default_client,
    update_mcp_tool_result,
)
from activity_feed.client.feed_client import FeedClient
from activity_feed.client.sink import ClientSink

__all__ = [
    "ClientSink",
    "FeedClient",
    "get_default_client",
    "log_mcp_tool_call",
    "set_default_client",
    "update_mcp_tool_result",
]
