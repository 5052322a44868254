"""`ActivityLoggerMiddleware`: one `api_request` event per HTTP request, for any ASGI app.

Pure ASGI (no `BaseHTTPMiddleware`): the request passes through untouched and the response is observed
by wrapping `send`, as Starlette's own GZip middleware does. The event is handed to the sink after the
response has been sent, so logging never delays or alters it, and a failing sink never fails it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from activity_feed.middleware.sink import ActivitySink
from activity_feed.schemas import MAX_TEXT, ActivityCreate, EventStatus, EventType

log = logging.getLogger(__name__)

DEFAULT_SKIP_PATHS = ("/health", "/healthz", "/readyz", "/livez", "/favicon.ico")
DEFAULT_SKIP_PREFIXES = ("/static/",)
_CORRELATION_HEADERS = (b"x-correlation-id", b"x-request-id")


class ActivityLoggerMiddleware:
    """Record every HTTP request of `app` as an `api_request` event.

    `tool_name` is `METHOD /route/{template}` when the router matched a route (so statistics group
    `/properties/1` and `/properties/2` together) and `METHOD /raw/path` otherwise; `data` holds the
    method, the raw path, the status code and the client's address. Requests to `skip_paths`, to paths
    under `skip_prefixes` and WebSocket connections (unless `include_websockets`) are not recorded.
    """

    def __init__(
        self,
        app: ASGIApp,
        sink: ActivitySink,
        *,
        skip_paths: Iterable[str] = DEFAULT_SKIP_PATHS,
        skip_prefixes: Iterable[str] = DEFAULT_SKIP_PREFIXES,
        include_websockets: bool = False,
        user_source: str | None = None,
    ) -> None:
        self.app = app
        self.sink = sink
        self.skip_paths = frozenset(skip_paths)
        self.skip_prefixes = tuple(skip_prefixes)
        self.include_websockets = include_websockets
        self.user_source = user_source

    def _observed(self, scope: Scope) -> bool:
        if scope["type"] == "websocket" and not self.include_websockets:
            return False
        if scope["type"] not in ("http", "websocket"):
            return False
        path: str = scope["path"]
        return path not in self.skip_paths and not path.startswith(self.skip_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._observed(scope):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code: int | None = None
        # Starlette's routers write the matched route (and, for mounts, the grown root_path) into this
        # same scope dict; what root_path had before the app ran tells how much a mount added.
        root_path: str = scope.get("root_path", "")

        async def observed_send(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except BaseException as exc:
            self._record(scope, root_path, status_code, started, exc)
            raise
        self._record(scope, root_path, status_code, started, None)

    def _record(
        self, scope: Scope, root_path: str, status_code: int | None, started: float, exc: BaseException | None
    ) -> None:
        try:
            self.sink.emit(self._event(scope, root_path, status_code, started, exc))
        except Exception:  # boundary: the host's request must never fail because logging did
            log.warning("could not record a request to %s", scope.get("path"), exc_info=True)

    def _event(
        self, scope: Scope, root_path: str, status_code: int | None, started: float, exc: BaseException | None
    ) -> ActivityCreate:
        duration_ms = (time.perf_counter() - started) * 1000
        method = scope.get("method", "WS")
        route = scope.get("route")
        path: str = scope["path"]
        route_path = getattr(route, "path", None)
        template = path if route_path is None else scope.get("root_path", "")[len(root_path) :] + route_path
        if exc is not None and status_code is None:
            status_code = 500
        failed = exc is not None or (status_code is not None and status_code >= 500)
        data: dict[str, Any] = {"method": method, "path": path, "status_code": status_code}
        client = scope.get("client")
        if client:
            data["client"] = f"{client[0]}:{client[1]}"
        headers = dict(scope.get("headers") or ())
        error_message = None
        if exc is not None:
            error_message = f"{type(exc).__name__}: {exc}"[:1000]
        elif failed:
            error_message = f"HTTP {status_code}"
        return ActivityCreate(
            tool_name=f"{method} {template}"[:MAX_TEXT],
            user_source=self.user_source or _header(headers, b"user-agent"),
            event_type=EventType.API_REQUEST,
            status=EventStatus.ERROR if failed else EventStatus.SUCCESS,
            data=data,
            duration_ms=duration_ms,
            error_message=error_message,
            correlation_id=next((_header(headers, h) for h in _CORRELATION_HEADERS if h in headers), None),
        )


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    return value.decode("latin-1").replace("\x00", "")[:MAX_TEXT]
