"""The relay's side toward the upstream: one connection per client connection, whose responses it
parses only to know where each begins and ends, handing every piece on as it arrives.

Pairing a client connection with an upstream connection keeps the relay as thin as a TCP forwarder:
no pool to choose from, and a client that goes away takes its upstream connection (and the streams on
it) away too.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from activity_feed.proxy.headers import HOP_BY_HOP, Head

CONNECT_TIMEOUT_SECONDS = 10.0
# Below the idle timeout of common servers (uvicorn and Node.js: 5 s): a connection idle for longer is
# replaced before the next request rather than reused just as the upstream closes it.
KEEPALIVE_SECONDS = 4.0


class UpstreamUnreachable(Exception):
    """No connection to the upstream could be made."""


class Origin:
    """Where the upstream is: `http(s)://host[:port]`, and the `Host` header that names it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the upstream must be an http:// or https:// URL, not {url!r}")
        self.url = url
        self.host = parts.hostname
        secure = parts.scheme == "https"
        self.port = parts.port or (443 if secure else 80)
        self.ssl = ssl.create_default_context() if secure else None
        name = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = (name if self.port == (443 if secure else 80) else f"{name}:{self.port}").encode()
        self.path = parts.path or "/"

    async def connect(self, listener: ResponseListener) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                _, connection = await loop.create_connection(
                    lambda: UpstreamConnection(listener),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError as exc:
            raise UpstreamUnreachable(f"no connection within {CONNECT_TIMEOUT_SECONDS:g} s") from exc
        except OSError as exc:
            raise UpstreamUnreachable(exc.strerror or str(exc) or type(exc).__name__) from exc
        return connection


class ResponseListener(Protocol):
    """What an upstream connection reports, in order, for each response."""

    def response_head(self, status: int, reason: bytes, head: Head) -> None: ...
    def response_body(self, data: bytes) -> None: ...
    def response_end(self, keep_alive: bool) -> None: ...
    def upstream_lost(self, problem: str) -> None: ...
    def upstream_pressure(self, paused: bool) -> None: ...
    def flush(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """A connection to the upstream; `head_only` is set while a HEAD request is answered."""

    def __init__(self, listener: ResponseListener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.head_only = False
        self.closed = False
        self._reason = b""
        self._head = Head(HOP_BY_HOP)
        self._interim = False
        self._keep_alive = False
        self._open_until_close = False  # a body without a length is under way: it ends with the connection

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def fresh(self, now: float) -> bool:
        return not self.closed and now - self.idle_since < KEEPALIVE_SECONDS

    def pause_reading(self, paused: bool) -> None:
        if self.transport is not None and not self.closed:
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            self.listener.upstream_lost(f"the upstream's response is not valid HTTP: {exc}")
        self.listener.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self.closed = self.closed, True
        if was_closed:
            return
        if self._open_until_close and exc is None:
            self._open_until_close = False
            self.listener.response_end(False)
            self.listener.flush()
        else:
            reason = f" ({exc})" if exc else ""
            self.listener.upstream_lost(f"the upstream closed the connection{reason}")

    def pause_writing(self) -> None:
        self.listener.upstream_pressure(True)

    def resume_writing(self) -> None:
        self.listener.upstream_pressure(False)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._reason = b""
        self._head = Head(HOP_BY_HOP)

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head.add(name, value)

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self._interim = 100 <= status < 200
        if self._interim:
            return  # the proxy answers `Expect` itself; interim responses are not relayed
        head = self._head
        # Asked now: once the message is complete, the parser has forgotten its headers.
        self._keep_alive = self.parser.should_keep_alive()
        self._open_until_close = (
            not self.head_only and status not in (204, 304) and head.length is None and not head.chunked
        )
        self.listener.response_head(status, self._reason, head)
        if self.head_only:
            # The parser cannot be told that a HEAD response has no body: the exchange ends here, and the
            # connection with it.
            self.closed = True
            self.listener.response_end(False)
            if self.transport is not None:
                self.transport.close()

    def on_body(self, body: bytes) -> None:
        if not self.closed:
            self.listener.response_body(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
        elif not self.closed:
            self._open_until_close = False
            self.listener.response_end(self._keep_alive)
