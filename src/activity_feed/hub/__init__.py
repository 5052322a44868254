"""Live fan-out of committed changes to stream clients, over a pluggable bus."""

from activity_feed.hub.hub import Hub
from activity_feed.hub.notice import RESYNC, Notice, decode_cursor, encode_cursor
from activity_feed.hub.recovery import ChangeLog
from activity_feed.hub.subscription import ChangeFilter, Subscription

__all__ = [
    "RESYNC",
    "ChangeFilter",
    "ChangeLog",
    "Hub",
    "Notice",
    "Subscription",
    "decode_cursor",
    "encode_cursor",
]
