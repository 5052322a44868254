"""`ClientSink`: lets `ActivityLoggerMiddleware` report an app's requests to a remote feed.

    app.add_middleware(ActivityLoggerMiddleware, sink=ClientSink(FeedClient(url)))

It lives with the client, not in `middleware/`, so that the middleware does not depend on the client.
"""

from __future__ import annotations

from activity_feed.client.counters import logger
from activity_feed.client.feed_client import FeedClient
from activity_feed.schemas import ActivityCreate


class ClientSink:
    """A middleware sink (`emit(event)`, returns at once, never raises) that sends through `client`."""

    def __init__(self, client: FeedClient) -> None:
        self.client = client

    def emit(self, event: ActivityCreate) -> None:
        try:
            self.client.log(
                event_type=event.event_type.value,
                tool_name=event.tool_name,
                user_source=event.user_source,
                status=event.status.value,
                data=event.data,
                duration_ms=event.duration_ms,
                error_message=event.error_message,
                correlation_id=event.correlation_id,
                timestamp=event.timestamp,
                id=event.id,
            )
        except Exception:  # boundary: log() never raises, but a sink must not be the first to
            logger.debug("activity feed: ClientSink could not queue an event", exc_info=True)
