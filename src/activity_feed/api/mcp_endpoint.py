"""`/mcp`: the feed's own MCP tools (activity_feed.feed_mcp) over streamable HTTP, in the service.

The tools read the feed through the same `FeedReader` as `activity-feed mcp`, over `httpx.ASGITransport`
into this very app, so one set of tools serves both. The endpoint is behind the feed's own guards (the
Host check, tokens: api/feed.py), so the SDK's DNS-rebinding check, which knows neither the allowed hosts
nor the tokens, is off. Stateless, with JSON answers, POST only: the tools are quick reads that send no
notifications, so no session outlives a request and no event stream (GET) is offered, which the
protocol allows with a 405; nothing holds a connection open when the service stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import anyio
import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from activity_feed import feed_mcp
from activity_feed.client.reader import FeedReader
from activity_feed.settings import Settings

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.types import Lifespan

MCP_PATH = "/mcp"
# What the in-process reader calls the feed: a loopback name, which the Host check always accepts.
_IN_PROCESS_URL = "http://127.0.0.1"
NOT_INSTALLED = 501
# How long the first request waits for the SDK to load and its session manager to start.
STARTUP_SECONDS = 30.0


def install_mcp_endpoint(app: FastAPI, settings: Settings) -> None:
    """Serve the feed's MCP tools at `/mcp` of `app` (which serves the feed), or, without the `mcp`
    extra, a 501 there that says what to install."""
    if not feed_mcp.available():
        app.router.routes.append(Route(MCP_PATH, _extra_missing, methods=["GET", "POST", "DELETE"]))
        return
    token = settings.read_token or settings.token
    reader = FeedReader(
        _IN_PROCESS_URL,
        # "" rather than None: no token, and not ACTIVITY_FEED_TOKEN from the environment either.
        token.get_secret_value() if token is not None else "",
        # A failure inside the app is its 500 answer (a tool error), not an exception in the tool. The
        # transport holds no connection, so the reader needs no closing and serves every lifespan run.
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
    )
    endpoint = McpEndpoint(reader)
    app.router.routes.append(Route(MCP_PATH, endpoint))
    app_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        async with app_lifespan(app_) as state, endpoint.running():
            yield state

    app.router.lifespan_context = cast("Lifespan[Any]", lifespan)


class McpEndpoint:
    """The ASGI app at `/mcp`: the SDK's streamable-HTTP session manager, one per run of the app's
    lifespan (a manager runs only once).

    The SDK (some 30 MB of modules) is loaded at the first request, not when the service starts: most
    feeds never serve /mcp, and their memory should not pay for it."""

    def __init__(self, reader: FeedReader) -> None:
        self.reader = reader
        self._server: MCPServer | None = None
        self._sessions: StreamableHTTPSessionManager | None = None
        self._wanted: anyio.Event | None = None
        self._ready = anyio.Event()
        self._stopping = anyio.Event()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # The session manager runs in a task of the lifespan (its task group must be left by the task
        # that entered it); the first request wakes that task, which then loads the SDK.
        self._wanted, self._ready, self._stopping = anyio.Event(), anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._serve_when_wanted, self._wanted, self._ready, self._stopping)
            try:
                yield
            finally:
                self._stopping.set()
                self._wanted.set()
                self._wanted = None

    async def _serve_when_wanted(
        self, wanted: anyio.Event, ready: anyio.Event, stopping: anyio.Event
    ) -> None:
        await wanted.wait()
        if stopping.is_set():
            return
        from mcp.server.transport_security import TransportSecuritySettings

        from activity_feed.feed_mcp.server import build_server

        if self._server is None:
            self._server = build_server(self.reader)
        # Made for its session manager (the SDK's way to mount a server in another app); the Starlette
        # app it returns is not used.
        self._server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        sessions = self._server.session_manager
        async with sessions.run():
            self._sessions = sessions
            ready.set()
            try:
                await stopping.wait()
            finally:
                self._sessions = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            detail = "the MCP endpoint takes POST only: it keeps no sessions and offers no event stream"
            await JSONResponse({"detail": detail}, 405, {"Allow": "POST"})(scope, receive, send)
            return
        if self._sessions is None and self._wanted is not None:
            self._wanted.set()
            with anyio.move_on_after(STARTUP_SECONDS):
                await self._ready.wait()
        if self._sessions is None:
            detail = "the MCP endpoint is not running: the app's lifespan has not started, or is ending"
            await JSONResponse({"detail": detail}, 503)(scope, receive, send)
            return
        await self._sessions.handle_request(scope, receive, send)


async def _extra_missing(request: Request) -> JSONResponse:
    detail = (
        "this feed serves no MCP endpoint: "
        "install the mcp extra (pip install '.[mcp]' in Activity Feed's folder)"
    )
    return JSONResponse({"detail": detail}, NOT_INSTALLED)
