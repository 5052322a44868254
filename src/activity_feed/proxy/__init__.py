"""`activity-feed proxy`: sits between an MCP client and any MCP server, relays every byte unchanged,
and records the conversation it sees (`recorder.py`) through a `FeedClient`."""

from activity_feed.proxy.recorder import (
    CLIENT_TO_SERVER,
    SERVER_TO_CLIENT,
    ConnectionRecorder,
    Direction,
    Transport,
)

__all__ = ["CLIENT_TO_SERVER", "SERVER_TO_CLIENT", "ConnectionRecorder", "Direction", "Transport"]
