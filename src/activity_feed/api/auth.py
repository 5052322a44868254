"""Bearer tokens and the stream's Origin check, as one pure ASGI middleware over the feed's routes.

A middleware rather than FastAPI dependencies because it covers HTTP and the WebSocket alike, answers
before a body is read or a subscription is taken, and leaves `/health`, the docs and the page (which hold
no data) open simply by not being under `path_prefix`. Being no dependency, it is invisible to the
OpenAPI schema, so `document_bearer_auth` states it there: the 401 and 403 answers themselves are declared
on the routes (api/routes.py).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from activity_feed.api.hosts import HostPolicy

# Reads may use the read token; anything else (POST, PATCH, DELETE) needs the write token. OPTIONS is a
# read so that a CORS preflight the CORS middleware did not answer is not asked for a token it cannot send.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CLOSE_POLICY_VIOLATION = 1008
SECURITY_SCHEME = "ActivityFeedToken"
_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class Role(Enum):
    NONE = 0
    READ = 1
    WRITE = 2


class TokenAuthMiddleware:
    """401 without a valid token, 403 for the read token on a write, and Origin checked on the stream."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        write_token: SecretStr | None,
        read_token: SecretStr | None = None,
        allowed_origins: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
        path_prefix: str | tuple[str, ...] = "/activities",
        read_only_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.write_token = _encoded(write_token)
        self.read_token = _encoded(read_token)
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)
        self.hosts = HostPolicy(allowed_hosts)
        self.path_prefix = path_prefix
        # Paths whose every method only reads (the MCP endpoint's POSTs carry read-only tool calls): the
        # read token may use them.
        self.read_only_paths = read_only_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        if self.write_token is None and scope["type"] == "http":
            # No token: HTTP is open, and only the stream's Origin is checked. Returning here keeps the
            # header parsing below off the ingest path, where it cost about a tenth of each request.
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            if not self._origin_allowed(Headers(scope=scope)):
                await reject_websocket(scope, send, 403, "origin not allowed", {})
                return
            presented = _bearer(scope) or _query_token(scope)
            if self._role(presented) is Role.NONE:
                await reject_websocket(scope, send, 401, _unauthorised_detail(presented), _challenge())
                return
        else:
            presented = _bearer(scope)
            role = self._role(presented)
            if role is Role.NONE:
                response = JSONResponse({"detail": _unauthorised_detail(presented)}, 401, _challenge())
                await response(scope, receive, send)
                return
            if (
                role is Role.READ
                and scope["method"] not in _READ_METHODS
                and not scope["path"].startswith(self.read_only_paths)
            ):
                detail = "the read token cannot change the feed: use the write token (ACTIVITY_FEED_TOKEN)"
                await JSONResponse({"detail": detail}, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _role(self, presented: str | None) -> Role:
        if self.write_token is None:
            return Role.WRITE  # no token configured: the feed is open (loopback by default, see serve)
        if presented is None:
            return Role.NONE
        candidate = presented.encode()
        # Both comparisons always run, so the time taken does not tell which token was close.
        is_write = hmac.compare_digest(candidate, self.write_token)
        is_read = self.read_token is not None and hmac.compare_digest(candidate, self.read_token)
        if is_write:
            return Role.WRITE
        return Role.READ if is_read else Role.NONE

    def _origin_allowed(self, headers: Headers) -> bool:
        # Browsers send Origin on every WebSocket handshake and let any page open one to any host: without
        # this check a page on another site could read a feed on localhost (cross-site WebSocket hijacking).
        origin = headers.get("origin")
        if origin is None:
            return True  # not a browser: nothing to hijack, the token decides
        origin = origin.rstrip("/")
        if origin in self.allowed_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https"):
            return False
        # The scheme is not compared because behind a TLS proxy the service sees ws:// while the page is
        # https://.
        same_origin = parts.netloc == headers.get("host", "")
        if self.write_token is not None:
            return same_origin  # the page's host is the host it connects to; the token does the rest
        # No token: a DNS-rebinding page is same-origin with the Host it sends, so the Origin's own host
        # must be one the feed answers to (any, when the operator allowed any Host).
        return self.hosts.trusts(parts.netloc) or (same_origin and self.hosts.any_host)


def _encoded(token: SecretStr | None) -> bytes | None:
    return None if token is None else token.get_secret_value().encode()


def _bearer(scope: Scope) -> str | None:
    # The raw header list, not `Headers(...).get`: that raises and catches KeyError for every request
    # without the header.
    raw = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
    scheme, _, value = raw.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _query_token(scope: Scope) -> str | None:
    # Browsers cannot set headers on a WebSocket, so the stream also takes `?token=`.
    query: str = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query):
        if name == "token" and value:
            return value
    return None


def _unauthorised_detail(presented: str | None) -> str:
    if presented is not None:
        return "invalid token"
    return "a token is required: send `Authorization: Bearer <token>`"


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="activity-feed"'}


async def reject_websocket(
    scope: Scope, send: Send, status: int, detail: str, headers: dict[str, str]
) -> None:
    """Refuse the handshake with an HTTP answer when the server can send one, else close with 1008 (which
    the server turns into a bare 403 before the handshake)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        response = JSONResponse({"detail": detail}, status, headers)
        await send(
            {"type": "websocket.http.response.start", "status": status, "headers": response.raw_headers}
        )
        await send({"type": "websocket.http.response.body", "body": response.body})
        return
    await send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION, "reason": detail})


def document_bearer_auth(app: FastAPI, *, path_prefix: str | tuple[str, ...] = "/activities") -> None:
    """Declare the bearer token in `app`'s OpenAPI schema: a security scheme, required by every operation
    under `path_prefix`, so that /docs offers an Authorize button whose token it then sends. Only for a
    feed that has tokens: without one nothing is required, and the schema must not say otherwise."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        # Whatever built the schema before (FastAPI, or the app's own override) still does; this only adds
        # to it, the same way each time, so it does not matter whether that schema is cached.
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "ACTIVITY_FEED_TOKEN (writes and reads) or ACTIVITY_FEED_READ_TOKEN (reads only)",
        }
        for path, item in schema.get("paths", {}).items():
            if path.startswith(path_prefix):
                for method, operation in item.items():
                    if method in _OPERATIONS:
                        operation["security"] = [{SECURITY_SCHEME: []}]
        return schema

    # FastAPI's documented way to extend the schema is to replace `app.openapi`.
    app.openapi = openapi  # type: ignore[method-assign]
