"""HTTP and WebSocket: the service app, the embeddable feed, and its routes."""

from activity_feed.api.app import create_app
from activity_feed.api.feed import ActivityFeed
from activity_feed.api.store_sink import StoreSink

__all__ = ["ActivityFeed", "StoreSink", "create_app"]
