"""Activity Feed: a self-hosted live activity feed for MCP servers and HTTP APIs.

Names are imported on first use, so that `from activity_feed import FeedClient` inside an MCP server does
not load the service's web framework and database layers.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("activity-feed")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

_EXPORTS = {
    "ActivityFeed": "activity_feed.api",
    "create_app": "activity_feed.api",
    "ClientSink": "activity_feed.client",
    "FeedClient": "activity_feed.client",
    "log_mcp_tool_call": "activity_feed.client",
    "update_mcp_tool_result": "activity_feed.client",
    "ActivityLoggerMiddleware": "activity_feed.middleware",
    "ActivitySink": "activity_feed.middleware",
    "StoreSink": "activity_feed.api",
    "Redactor": "activity_feed.redaction",
    "Settings": "activity_feed.settings",
    "track_tool": "activity_feed.mcp",
}

if TYPE_CHECKING:
    from activity_feed.api import ActivityFeed, StoreSink, create_app
    from activity_feed.client import ClientSink, FeedClient, log_mcp_tool_call, update_mcp_tool_result
    from activity_feed.mcp import track_tool
    from activity_feed.middleware import ActivityLoggerMiddleware, ActivitySink
    from activity_feed.redaction import Redactor
    from activity_feed.settings import Settings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'activity_feed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ActivityFeed",
    "ActivityLoggerMiddleware",
    "ActivitySink",
    "ClientSink",
    "FeedClient",
    "Redactor",
    "Settings",
    "StoreSink",
    "__version__",
    "create_app",
    "log_mcp_tool_call",
    "track_tool",
    "update_mcp_tool_result",
]
