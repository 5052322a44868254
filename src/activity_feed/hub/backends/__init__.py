"""Bus backends, chosen by URL scheme; optional dependencies are imported only when their scheme is used."""

from __future__ import annotations

from urllib.parse import urlsplit

from activity_feed.errors import ConfigurationError
from activity_feed.hub.backends.base import BroadcastBackend, BusUnavailableError, Gap
from activity_feed.hub.backends.memory import MemoryBackend


def backend_for_url(url: str) -> BroadcastBackend:
    """The backend for `url`: `memory://` (one instance), or `redis://` / `rediss://` (several; the
    channel is `activity-feed:changes` unless the URL says `?channel=...`)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryBackend()
    if scheme in ("redis", "rediss"):
        try:
            from activity_feed.hub.backends.redis import RedisBackend
        except ImportError as exc:
            raise ConfigurationError(
                f"the broadcast URL {scheme}://... needs the Redis client: "
                "pip install '.[redis]' in Activity Feed's folder"
            ) from exc
        return RedisBackend(url)
    # The scheme only: the rest of the URL may hold a password.
    raise ConfigurationError(
        f"unsupported broadcast URL scheme {scheme + '://'!r}: use memory:// or redis://host:port"
    )


__all__ = ["BroadcastBackend", "BusUnavailableError", "Gap", "MemoryBackend", "backend_for_url"]
