"""ASGI middleware that records HTTP requests, and the sinks it writes through."""

from activity_feed.middleware.asgi import ActivityLoggerMiddleware
from activity_feed.middleware.sink import ActivitySink

__all__ = ["ActivityLoggerMiddleware", "ActivitySink"]
