"""The feed's Prometheus metrics: the families `GET /metrics` serves (api/metrics.py), in a registry of
each app's own, and what fills them (docs/metrics.md)."""

from activity_feed.metrics.feed_metrics import FeedMetrics
from activity_feed.metrics.state import FeedState

__all__ = ["FeedMetrics", "FeedState"]
