"""Where `ActivityLoggerMiddleware` sends its events: any object with `emit`, which must return at once and
never raise (api/store_sink.py writes into the local store; client/sink.py sends to a remote feed)."""

from __future__ import annotations

from typing import Protocol

from activity_feed.schemas import ActivityCreate


class ActivitySink(Protocol):
    def emit(self, event: ActivityCreate) -> None:
        """Hand `event` over for recording without waiting and without raising."""
