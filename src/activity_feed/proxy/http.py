"""The streamable-HTTP relay: a reverse proxy in front of one MCP server's origin, at the level of the
HTTP/1.1 protocol.

Each client connection gets a connection of its own to the upstream. Requests go there with the same
method, path and query and the client's end-to-end headers (`headers.py`); responses come back with
their status, reason and end-to-end headers, and every body goes on in the pieces that arrived, as they
arrive (an SSE event is never held back for the rest of its stream). Nothing is parsed but what HTTP
needs to find where a message begins and ends: the bytes of a body are relayed as they came. What passes
the MCP endpoint (the upstream URL's path) is also handed to a tap that records it later, off this path.
"""

from __future__ import annotations

import asyncio

from activity_feed.proxy.busy_poll import LoopPolling
from activity_feed.proxy.http_connection import ClientConnection
from activity_feed.proxy.http_exchange import Exchange, Tap
from activity_feed.proxy.upstream import Origin

__all__ = ["Exchange", "HttpRelay", "Tap"]

# A client connection idle for this long is closed (the client opens another when it needs one).
IDLE_SECONDS = 75.0
_SWEEP_SECONDS = 15.0


class HttpRelay:
    """Relays to `upstream` (`http(s)://host:port/path`); `tap` records the exchanges with that path.
    After each request it sends upstream, the relay polls for `busy_poll` seconds (`busy_poll.py`)."""

    def __init__(self, upstream: str, tap: Tap | None = None, *, busy_poll: float = 0.0) -> None:
        self.origin = Origin(upstream)
        self.endpoint = self.origin.path.encode()
        self.tap = tap
        self.busy_poll = busy_poll
        self.polling: LoopPolling | None = None
        self.connections: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self._all_closed: asyncio.Event | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on `host`:`port` (0: any free port); the address bound."""
        loop = asyncio.get_running_loop()
        self.polling = LoopPolling(loop, self.busy_poll)
        self._server = await loop.create_server(lambda: ClientConnection(self), host, port)
        self._sweep = loop.call_later(_SWEEP_SECONDS, self._close_idle)
        address = self._server.sockets[0].getsockname()
        return address[0], address[1]

    def _close_idle(self) -> None:
        """Close the connections idle for `IDLE_SECONDS` (one timer for all, not one per exchange)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection in list(self.connections):
            if connection.idle_since is not None and now - connection.idle_since > IDLE_SECONDS:
                connection.close()
        self._sweep = loop.call_later(_SWEEP_SECONDS, self._close_idle)

    async def stop(self, grace: float) -> None:
        """Stop listening, close idle connections and open streams at once, and give the exchanges in
        flight up to `grace` seconds to end."""
        if self._server is not None:
            self._server.close()
        if self._sweep is not None:
            self._sweep.cancel()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            self._all_closed = asyncio.Event()
            try:
                async with asyncio.timeout(grace):
                    await self._all_closed.wait()
            except TimeoutError:
                pass
        for connection in list(self.connections):
            connection.close()

    def forget(self, connection: ClientConnection) -> None:
        self.connections.discard(connection)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()
