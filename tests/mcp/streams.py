"""A low-level server over in-memory JSON-RPC streams, as a stdio server sees its client: through the
`Client` (`StreamTransport`) or message by message (`RawPeer`), for what a `Client` never sends on its
own (a cancellation with a reason of its choosing, a connection that just ends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
from mcp.server import Server
from mcp.server.runner import serve_loop
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCNotification, JSONRPCRequest

SHUTDOWN_SECONDS = 5.0


@asynccontextmanager
async def serving(server: Server[Any], *, handshake_only: bool = False) -> AsyncIterator[tuple[Any, Any]]:
    """Run `server` on one connection; yield the client's (read, write) streams. `handshake_only`: as
    a server of the handshake era only, which knows no `server/discover`. Leaving closes the client's
    side and waits, bounded, for the server to finish."""
    async with create_client_server_memory_streams() as (client_streams, server_streams):
        done = anyio.Event()

        async def run() -> None:
            try:
                if handshake_only:
                    async with server.lifespan(server) as state:
                        await serve_loop(server, *server_streams, lifespan_state=state)
                else:
                    await server.run(*server_streams, server.create_initialization_options())
            finally:
                done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            try:
                yield client_streams
            finally:
                await client_streams[1].aclose()
                with anyio.move_on_after(SHUTDOWN_SECONDS):
                    await done.wait()
                tg.cancel_scope.cancel()


class StreamTransport:
    """A `Client` transport to `server` over in-memory JSON-RPC streams."""

    def __init__(self, server: Server[Any], *, handshake_only: bool = False) -> None:
        self._server = server
        self._handshake_only = handshake_only
        self._serving: Any = None

    async def __aenter__(self) -> tuple[Any, Any]:
        self._serving = serving(self._server, handshake_only=self._handshake_only)
        streams: tuple[Any, Any] = await self._serving.__aenter__()
        return streams

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._serving.__aexit__(exc_type, exc, tb)


class RawPeer:
    """A client that writes JSON-RPC messages itself."""

    def __init__(self, read: Any, write: Any) -> None:
        self.read = read
        self.write = write

    async def request(self, request_id: int, method: str, params: dict[str, Any] | None = None) -> None:
        message = JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params)
        await self.write.send(SessionMessage(message))

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self.write.send(
            SessionMessage(JSONRPCNotification(jsonrpc="2.0", method=method, params=params))
        )

    async def answer(self, request_id: int) -> Any:
        """The server's answer to `request_id` (bounded wait)."""
        with anyio.fail_after(SHUTDOWN_SECONDS):
            async for item in self.read:
                message = getattr(item, "message", None)
                if getattr(message, "id", None) == request_id:
                    return message
        raise AssertionError(f"the connection ended before the answer to {request_id}")

    async def handshake(self, name: str = "raw-client") -> None:
        params = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": name, "version": "1.0"},
        }
        await self.request(0, "initialize", params)
        await self.answer(0)
        await self.notify("notifications/initialized")
