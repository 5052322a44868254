"""A real uvicorn server in a background thread, for tests that cross the network: the service's own
`BackgroundServer` (the demo runs on it too), on loopback."""

from __future__ import annotations

import socket
from typing import Any

from activity_feed.api import create_app
from activity_feed.api.server import BackgroundServer
from activity_feed.settings import Settings


def free_port() -> int:
    """A port with nothing listening on it (connections are refused) until a test starts something."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class LiveServer(BackgroundServer):
    """`app` under uvicorn on `port`: 0 lets the OS pick a free one; a fixed port lets a test point a
    client at a feed that is not up yet, or bring one back where its clients expect it."""

    def __init__(self, app: Any, port: int = 0, settings: Settings | None = None) -> None:
        super().__init__(app, port=port, name="live server", settings=settings)

    @classmethod
    def for_settings(cls, settings: Settings | None, port: int = 0) -> LiveServer:
        return cls(create_app(settings), port, settings)

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)
