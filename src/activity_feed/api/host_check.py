"""The Host check: a feed without a token answers only requests addressed to it by a loopback name or by
a name listed in ACTIVITY_FEED_ALLOWED_HOSTS (api/hosts.py); others get 421 Misdirected Request.

Without a token, what keeps other web pages away from a feed on localhost is the browser's same-origin
policy, and DNS rebinding defeats it: a page on attacker.example points its own name at 127.0.0.1, and
its requests then reach the feed as same-origin ones, but still carrying `Host: attacker.example`.
Refusing that Host stops them. With a token the check is not installed: such a page cannot know the
token (the feed sets no cookie, and the page keeps its token in its own origin's storage).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from activity_feed.api.auth import reject_websocket
from activity_feed.api.hosts import LOOPBACK_NAMES, HostPolicy, host_name, is_loopback_name
from activity_feed.settings import Settings

SETTING = "ACTIVITY_FEED_ALLOWED_HOSTS"
MISDIRECTED = 421
_CACHED_DECISIONS = 256
_SHOWN_HOST_CHARS = 100


def refusal_detail(authority: str) -> str:
    shown = host_name(authority)[:_SHOWN_HOST_CHARS] or "(empty)"
    return (
        f"this feed has no token, so it answers only requests addressed to {LOOPBACK_NAMES} or to a "
        f"host listed in {SETTING}; this one was addressed to `{shown}`: add it to {SETTING} "
        "(comma-separated), or set ACTIVITY_FEED_TOKEN"
    )


class HostCheckMiddleware:
    """Answer 421 (and refuse the stream's handshake) when `Host` is not one `allowed_hosts` accepts, on
    paths under any of `path_prefixes` (`""`: every path)."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str], path_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.policy = HostPolicy(allowed_hosts)
        self.path_prefixes = path_prefixes
        # A client sends the same Host on every request: the decision is kept, so that ingest pays for a
        # dictionary look-up rather than parsing. Bounded, since any client can send any Host.
        self._decisions: dict[bytes, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(self.path_prefixes):
            await self.app(scope, receive, send)
            return
        # No Host at all is no browser's request, and only a browser can be made to rebind.
        raw = _host(scope)
        if raw is None or self._decisions.get(raw) or self._accepts(raw):
            await self.app(scope, receive, send)
            return
        detail = refusal_detail(raw.decode("latin-1"))
        if scope["type"] == "websocket":
            await reject_websocket(scope, send, MISDIRECTED, detail, {})
            return
        await JSONResponse({"detail": detail}, MISDIRECTED)(scope, receive, send)

    def _accepts(self, raw: bytes) -> bool:
        decision = self._decisions.get(raw)
        if decision is None:
            decision = self.policy.accepts(raw.decode("latin-1"))
            if len(self._decisions) >= _CACHED_DECISIONS:
                self._decisions.clear()
            self._decisions[raw] = decision
        return decision


def _host(scope: Scope) -> bytes | None:
    # A plain loop over the raw list: this runs on every ingest request (a generator costs more).
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"host":
            return value
    return None


def open_feed_hint(settings: Settings) -> str | None:
    """What `serve` says at start when it listens beyond loopback without a token and without allowed
    hosts: requests that name the machine will be refused until ACTIVITY_FEED_ALLOWED_HOSTS lists it."""
    if settings.token is not None or settings.allowed_hosts or is_loopback_name(host_name(settings.host)):
        return None
    unspecified = settings.host in ("0.0.0.0", "::", "")
    name = socket.gethostname() if unspecified else settings.host
    in_url = f"[{name}]" if ":" in name else name
    return (
        f"no token: only requests addressed to {LOOPBACK_NAMES} are answered (others get 421); "
        f"to reach the feed as http://{in_url}:{settings.port}/, set {SETTING}={name} "
        "(a comma-separated list of names)"
    )
