"""One client connection of the HTTP relay and its connection to the upstream, at the level of the
HTTP/1.1 protocol (see `http.py`): an `httptools` parser for the requests, `upstream.py` for the
responses, and the bytes between them."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol, cast

import httptools

from activity_feed.proxy import wire
from activity_feed.proxy.busy_poll import LoopPolling
from activity_feed.proxy.headers import NOT_FROM_CLIENTS, Head
from activity_feed.proxy.http_exchange import Exchange, Tap
from activity_feed.proxy.upstream import Origin, UpstreamConnection, UpstreamUnreachable

# A request line and headers larger than this are refused (431), as most servers do.
MAX_HEAD_BYTES = 64 * 1024
# A request body larger than this is relayed but not recorded.
MAX_RECORDED_BODY = 16 * 1024 * 1024


class Relay(Protocol):
    """What a connection needs of the relay that accepted it."""

    origin: Origin
    endpoint: bytes
    tap: Tap | None
    connections: set[ClientConnection]
    polling: LoopPolling | None

    def forget(self, connection: ClientConnection) -> None: ...


class ClientConnection(asyncio.Protocol):
    """One connection from a client, and its upstream connection; an `httptools` parser's callbacks."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.origin = relay.origin
        self.tap = relay.tap
        self.polling = relay.polling
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.upstream: UpstreamConnection | None = None
        self.exchanges: deque[Exchange] = deque()
        self.gone = False
        self._stopping = False
        self._url: list[bytes] = []
        self._head = Head(NOT_FROM_CLIENTS)
        self._to_client: list[bytes] = []
        self._to_upstream: list[bytes] = []
        self._paused_by: set[str] = set()
        self.idle_since: float | None = None  # when the last exchange ended; None while one is under way
        self._close_when_flushed = False
        self._connecting: asyncio.Task[None] | None = None
        # A head whose body (of a known, non-zero length) has not come yet waits for it, so that a head
        # and a body the peer wrote one after the other go on in one write.
        self._hold_up = False
        self._hold_down = False

    # asyncio.Protocol, toward the client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.relay.connections.add(self)
        self.idle_since = self.loop.time()

    def data_received(self, data: bytes) -> None:
        self.idle_since = None
        while data and not self._close_when_flushed:
            try:
                self.parser.feed_data(data)
                break
            except httptools.HttpParserUpgrade as upgrade:
                # Relayed as an ordinary request (`Upgrade` is hop-by-hop); what follows is the next one.
                data = data[upgrade.args[0] :]
            except httptools.HttpParserCallbackError as exc:
                if not isinstance(refusal := exc.__context__, _Refused):
                    raise
                self._reject(refusal.status, refusal.message)
            except httptools.HttpParserError as exc:
                self._reject(400, f"invalid HTTP request: {exc}")
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        for exchange in self.exchanges:
            self._end(exchange, "no response: the client disconnected")
        self.exchanges.clear()
        self.relay.forget(self)

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading(True)

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading(False)

    # the request, as the parser reads it

    def on_message_begin(self) -> None:
        self._url = []
        self._head = Head(NOT_FROM_CLIENTS)

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._head.size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head.add(name, value)

    def on_headers_complete(self) -> None:
        parser = self.parser
        head = self._head
        if head.size > MAX_HEAD_BYTES:
            raise _Refused(431, f"the request's line and headers exceed {MAX_HEAD_BYTES} bytes")
        method = parser.get_method()
        target = b"".join(self._url)
        length = head.content_length() or 0
        if parser.should_upgrade() and (method == b"CONNECT" or head.chunked or length):
            # The parser has taken what follows the head for the new protocol's.
            raise _Refused(501, "the proxy does not relay CONNECT or protocol upgrades")
        exchange = Exchange(
            method.decode("ascii"),
            head.session,
            parser.should_keep_alive(),
            parser.get_http_version() == "1.0",
        )
        exchange.chunked_in = head.chunked
        self._hold_up = not head.chunked and length > 0
        if self.tap is not None and target.partition(b"?")[0] == self.relay.endpoint:
            exchange.wanted = True
            exchange.copy_limit = MAX_RECORDED_BODY
        exchange.out.append(
            wire.request_head(method, target, self.origin.authority, head.end_to_end(), head.chunked)
        )
        self.exchanges.append(exchange)
        if len(self.exchanges) == 1:
            if head.expect is not None and head.expect.lower() == b"100-continue":
                self._to_client.append(wire.CONTINUE)
            self._begin(exchange)
        else:
            self._pause("queued")  # one request at a time upstream: the next waits for this answer

    def on_body(self, body: bytes) -> None:
        self._hold_up = False
        exchange = self.exchanges[-1]
        if not exchange.refused:
            self._send_up(exchange, wire.chunk(body) if exchange.chunked_in else body)
        if exchange.copy is not None:
            exchange.copy_size += len(body)
            if exchange.copy_size > exchange.copy_limit:
                exchange.copy = None
            else:
                exchange.copy.append(body)

    def on_message_complete(self) -> None:
        self._hold_up = False
        if not self.exchanges:
            return
        exchange = self.exchanges[-1]
        exchange.request_done = True
        if exchange.chunked_in and not exchange.refused:
            self._send_up(exchange, wire.LAST_CHUNK)
        if exchange.wanted and exchange.copy is not None:
            exchange.body = b"".join(exchange.copy)
            exchange.copy = None
            if self.tap is not None and (not exchange.response_started or exchange.refusal is not None):
                exchange.recorded = True
                self.tap.request(exchange, exchange.body)
        if exchange.refusal is not None:
            self._answer_refusal(exchange, exchange.refusal)
            return
        if not exchange.keep_alive:
            self._pause("last request")
        if exchange.response_done:
            self._finish(exchange)

    # the upstream's response (upstream.ResponseListener)

    def response_head(self, status: int, reason: bytes, head: Head) -> None:
        exchange = self._current()
        if exchange is None:
            return
        exchange.response_started = True
        has_body = exchange.method != "HEAD" and status not in (204, 304) and not 100 <= status < 200
        length = head.content_length()
        exchange.streaming = has_body and length is None
        if exchange.streaming and exchange.http10:
            exchange.keep_alive = False  # an HTTP/1.0 client reads to the end of the connection
        exchange.chunked_out = exchange.streaming and not exchange.http10
        self._hold_down = has_body and bool(length)
        headers = head.end_to_end()
        self._to_client.append(wire.response_head(status, reason, headers, exchange.chunked_out))
        if exchange.recorded and self.tap is not None:
            self.tap.response(exchange, status, headers)

    def response_body(self, data: bytes) -> None:
        self._hold_down = False
        exchange = self._current()
        if exchange is None:
            return
        self._to_client.append(wire.chunk(data) if exchange.chunked_out else data)
        if exchange.recorded and self.tap is not None:
            self.tap.chunk(exchange, data)

    def response_end(self, keep_alive: bool) -> None:
        self._hold_down = False
        exchange = self._current()
        upstream = self.upstream
        if upstream is not None:
            if keep_alive:
                upstream.idle_since = self.loop.time()
            else:
                upstream.close()
                self.upstream = None
        if exchange is None:
            return
        if exchange.chunked_out:
            self._to_client.append(wire.LAST_CHUNK)
        exchange.response_done = True
        self._end(exchange, None)
        if exchange.request_done:
            self._finish(exchange)
        else:
            # Answered before the client finished sending: the rest of its body has nowhere to go.
            self._close_when_flushed = True

    def upstream_lost(self, problem: str) -> None:
        self._hold_down = False
        self.upstream = None
        exchange = self._current()
        if exchange is None or not exchange.sent or exchange.response_done:
            return  # an idle connection the upstream closed: the next request opens another
        if not exchange.response_started:
            self._refuse(exchange, f"no response: {problem}")
        else:
            # The status line has gone: ending the connection short tells the client the response is
            # incomplete.
            self._end(exchange, f"no response: {problem} in the middle of the response")
            self._close_when_flushed = True
        self._flush()

    def upstream_pressure(self, paused: bool) -> None:
        if paused:
            self._pause("upstream")
        else:
            self._resume("upstream")

    def flush(self) -> None:
        """Write what the upstream's last read produced (called once per read: one write, not one per
        header, chunk and ending)."""
        self._flush()

    # shutting down

    def shutdown(self) -> None:
        """The server stops: close now if idle or streaming, else after the exchange in flight."""
        self._stopping = True
        current = self._current()
        if current is None or (current.streaming and current.method == "GET"):
            self.close()
        else:
            self._pause("stopping")

    def close(self) -> None:
        if self.transport is not None and not self.gone:
            self.transport.close()

    # internals

    def _current(self) -> Exchange | None:
        return self.exchanges[0] if self.exchanges else None

    def _begin(self, exchange: Exchange) -> None:
        """Send `exchange` upstream (it is first in line), on the connection there is or a new one."""
        upstream = self.upstream
        if upstream is not None and upstream.fresh(self.loop.time()):
            self._send_first(upstream, exchange)
            return
        if upstream is not None:
            upstream.close()
            self.upstream = None
        self._connecting = self.loop.create_task(self._connect(exchange))

    async def _connect(self, exchange: Exchange) -> None:
        try:
            upstream = await self.origin.connect(self)
        except UpstreamUnreachable as exc:
            if not self.gone:
                self._refuse(exchange, f"upstream {self.origin.url} unreachable: {exc}")
                self._flush()
            return
        if self.gone or self._current() is not exchange:
            upstream.close()
            return
        self.upstream = upstream
        self._send_first(upstream, exchange)
        self._flush()

    def _send_first(self, upstream: UpstreamConnection, exchange: Exchange) -> None:
        upstream.head_only = exchange.method == "HEAD"
        exchange.sent = True
        self._to_upstream += exchange.out
        exchange.out = []

    def _send_up(self, exchange: Exchange, data: bytes) -> None:
        if exchange.sent:
            self._to_upstream.append(data)
        else:
            exchange.out.append(data)

    def _flush(self) -> None:
        closing = self._close_when_flushed
        if self._to_upstream and (closing or not self._hold_up):
            if self.upstream is not None:
                self.upstream.write(b"".join(self._to_upstream))
                if self.polling is not None:
                    self.polling.keep_polling()  # its answer is relayed without waiting to be woken
            self._to_upstream.clear()
        if self._to_client and (closing or not self._hold_down):
            if self.transport is not None and not self.gone:
                data = self._to_client[0] if len(self._to_client) == 1 else b"".join(self._to_client)
                self.transport.write(data)
            self._to_client.clear()
        if closing:
            self.close()

    def _finish(self, exchange: Exchange) -> None:
        """`exchange` is over both ways: the next request in line goes upstream, or the connection
        waits for one."""
        self.exchanges.popleft()
        if not exchange.keep_alive or self._stopping:
            self._close_when_flushed = True
            return
        if self.exchanges:
            self._begin(self.exchanges[0])
            if len(self.exchanges) == 1:
                self._resume("queued")
        else:
            self._resume("queued")
            self.idle_since = self.loop.time()

    def _refuse(self, exchange: Exchange, problem: str) -> None:
        """Answer 502 for `exchange`, which got no response, once the client has sent all of it."""
        exchange.refused = True
        exchange.out = []
        exchange.response_started = True
        if exchange.request_done:
            self._answer_refusal(exchange, problem)
        else:
            exchange.refusal = problem

    def _answer_refusal(self, exchange: Exchange, problem: str) -> None:
        exchange.refusal = None
        exchange.response_done = True
        body = exchange.body
        if body is None and exchange.copy is not None:
            body = b"".join(exchange.copy)
        self._to_client.append(wire.bad_gateway(problem, wire.request_id(body), close=False))
        self._end(exchange, problem)
        self._finish(exchange)

    def _reject(self, status: int, message: str) -> None:
        """A request the relay will not pass on: answer it when nothing else is being answered, then
        close."""
        if not self.exchanges or not self.exchanges[0].response_started:
            self._to_client.append(wire.plain(status, message))
        self._close_when_flushed = True

    def _end(self, exchange: Exchange, problem: str | None) -> None:
        if exchange.recorded and self.tap is not None:
            exchange.recorded = False
            self.tap.end(exchange, problem)

    def _pause(self, reason: str) -> None:
        if not self._paused_by and self.transport is not None:
            self.transport.pause_reading()
        self._paused_by.add(reason)

    def _resume(self, reason: str) -> None:
        if reason in self._paused_by:
            self._paused_by.discard(reason)
            if not self._paused_by and self.transport is not None and not self.gone:
                self.transport.resume_reading()


class _Refused(Exception):
    """Raised inside a parser callback: the request is answered `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
