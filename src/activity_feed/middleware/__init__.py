"""ASGI middleware that records HTTP requests, and the sinks it writes through."""

from activity_feed.middleware.asgi import ActivityLoggerMiddleware
from activity_feed.middleware.sinks import ActivitySink, StoreSink

__all__ = ["ActivityLoggerMiddleware", "ActivitySink", "StoreSink"]
