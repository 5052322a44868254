"""Bus backends, chosen by URL scheme; optional dependencies are imported only when their scheme is used."""

from __future__ import annotations

from urllib.parse import urlsplit

from activity_feed.errors import ConfigurationError
from activity_feed.hub.backends.base import BroadcastBackend
from activity_feed.hub.backends.memory import MemoryBackend


def backend_for_url(url: str) -> BroadcastBackend:
    """The backend for `url`: `memory://` now; `redis://` is planned (see the README)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryBackend()
    raise ConfigurationError(f"unsupported broadcast URL {url!r}: use memory://")


__all__ = ["BroadcastBackend", "MemoryBackend", "backend_for_url"]
