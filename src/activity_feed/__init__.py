"""Activity Feed: a self-hosted live activity feed for MCP servers and HTTP APIs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("activity-feed")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

from activity_feed.api import ActivityFeed, create_app
from activity_feed.middleware import ActivityLoggerMiddleware, ActivitySink, StoreSink
from activity_feed.settings import Settings

__all__ = [
    "ActivityFeed",
    "ActivityLoggerMiddleware",
    "ActivitySink",
    "Settings",
    "StoreSink",
    "__version__",
    "create_app",
]
