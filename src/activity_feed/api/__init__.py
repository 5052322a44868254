"""HTTP and WebSocket: the service app, the embeddable feed, and its routes."""

from activity_feed.api.app import create_app
from activity_feed.api.feed import ActivityFeed

__all__ = ["ActivityFeed", "create_app"]
