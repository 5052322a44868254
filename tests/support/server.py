"""A real uvicorn server in a background thread, on a port the OS picks, for tests that cross the network."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from activity_feed.api import create_app
from activity_feed.api.server import server_config
from activity_feed.settings import Settings

START_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    """A port with nothing listening on it (connections are refused) until a test starts something."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class LiveServer:
    """`app` under uvicorn on `port`: 0 lets the OS pick a free one; a fixed port lets a test point a
    client at a feed that is not up yet, or bring one back where its clients expect it."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.app = app
        self.server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)
        self.port = 0

    @classmethod
    def for_settings(cls, settings: Settings | None, port: int = 0) -> LiveServer:
        return cls(create_app(settings), port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread stopped during start-up (see its log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {START_TIMEOUT_SECONDS} s")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=START_TIMEOUT_SECONDS)
