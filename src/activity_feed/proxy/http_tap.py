"""What the HTTP relay copies, recorded later on the same event loop, off the relay's path.

The relay hands each exchange with the MCP endpoint to `HttpTap` (a deque append and a timestamp) and
goes on; the copies are recorded in batches, in a callback the loop runs every `BATCH_SECONDS` while
there are some (each message keeps the time the relay handled it).

Each exchange's JSON-RPC messages go to the recorder of its session, the `Mcp-Session-Id` (from the
request, or from the response to `initialize`); an exchange without one gets a recorder of its own.
Requests the client POSTs are `client_to_server`; what comes back in a JSON body or on an SSE stream
(the POST's or the GET's) is `server_to_client`, and the server's requests there are answered in later
POSTs, paired by id within the session. No header but the session's is read: `Authorization` never
reaches a recorder.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import orjson

from activity_feed.mcp.sinks import warn_once
from activity_feed.proxy.headers import RawHeaders, header
from activity_feed.proxy.http_exchange import Exchange
from activity_feed.proxy.lines import EDGE_BYTES, Line, Oversized
from activity_feed.proxy.recorder import CLIENT_TO_SERVER, SERVER_TO_CLIENT, ConnectionRecorder
from activity_feed.proxy.sse import SseParser
from activity_feed.proxy.tap import MAX_BACKLOG_BYTES, MAX_LINE_BYTES
from activity_feed.proxy.wire import PROXY_ERROR_CODE, PROXY_ERROR_PREFIX

MAX_SESSIONS = 1000
MAX_SESSION_ID = 200
# The copies are recorded in batches this often: a recording step after every relayed message would
# interleave with the relay's own work at each exchange, where one batch takes a moment now and then.
BATCH_SECONDS = 0.02
# One batch records for at most this long before letting the relay's callbacks run.
_SLICE_SECONDS = 0.005
_ERROR_PREVIEW = 200

MakeRecorder = Callable[[str | None], ConnectionRecorder]
# (kind, exchange, payload, when the relay handled it)
_Item = tuple[str, Exchange, Any, float]


class _Copy:
    """What the tap knows of one exchange while its items are recorded."""

    __slots__ = ("body", "body_at", "gap", "held", "json", "recorder", "session", "sse", "status", "unzip")

    def __init__(self, session: str | None, body: bytes, at: float) -> None:
        self.session = session
        self.body = body
        self.body_at = at
        self.held = False  # an `initialize` waits for the response to name its session
        self.recorder: ConnectionRecorder | None = None
        self.status = 0
        self.sse: SseParser | None = None
        self.json: _Body | None = None
        self.unzip: Any = None
        self.gap = False


class _Body:
    """A JSON body's chunks, in bounded memory."""

    __slots__ = ("head", "parts", "size", "tail")

    def __init__(self) -> None:
        self.parts: list[bytes] | None = []
        self.head = b""
        self.tail = b""
        self.size = 0

    def add(self, data: bytes, limit: int) -> None:
        self.size += len(data)
        if self.parts is not None:
            self.parts.append(data)
            if self.size > limit:
                joined = b"".join(self.parts)
                self.head, self.tail, self.parts = joined[:EDGE_BYTES], joined[-EDGE_BYTES:], None
        else:
            self.tail = (self.tail + data)[-EDGE_BYTES:]

    def message(self) -> Line:
        if self.parts is None:
            return Oversized(self.head, self.tail, self.size)
        return b"".join(self.parts)


class HttpTap:
    """Records the relayed exchanges through recorders made by `make_recorder(session_id)`."""

    def __init__(
        self,
        make_recorder: MakeRecorder,
        *,
        max_message_bytes: int = MAX_LINE_BYTES,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._make_recorder = make_recorder
        self.max_message_bytes = max_message_bytes
        self.max_backlog_bytes = max_backlog_bytes
        self.max_sessions = max_sessions
        self.sessions: OrderedDict[str, ConnectionRecorder] = OrderedDict()
        self.skipped = 0  # copies not recorded because the recorder was too far behind
        self._items: deque[_Item] = deque()
        self._backlog = 0
        self._scheduled = False
        self._copies: dict[Exchange, _Copy] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # The relay's side: queue and return.

    def request(self, exchange: Exchange, body: bytes) -> None:
        self._put(("request", exchange, body, time.perf_counter()), len(body))

    def response(self, exchange: Exchange, status: int, headers: RawHeaders) -> None:
        self._put(("response", exchange, (status, headers), time.perf_counter()), 0)

    def chunk(self, exchange: Exchange, data: bytes) -> None:
        self._put(("chunk", exchange, data, time.perf_counter()), len(data))

    def end(self, exchange: Exchange, problem: str | None) -> None:
        self._put(("end", exchange, problem, time.perf_counter()), 0)

    def _put(self, item: _Item, size: int) -> None:
        if size and self._backlog + size > self.max_backlog_bytes:
            self.skipped += 1
            item = ("gap", item[1], None, item[3])
            size = 0
        self._items.append(item)
        self._backlog += size
        if not self._scheduled:
            self._scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_later(BATCH_SECONDS, self._drain)

    # Recording, a slice at a time.

    def _drain(self) -> None:
        self._scheduled = False
        deadline = time.perf_counter() + _SLICE_SECONDS
        items = self._items
        while items:
            kind, exchange, payload, at = items.popleft()
            try:
                self._record(kind, exchange, payload, at)
            except Exception:  # boundary: the relay goes on whatever the recording does
                warn_once("proxy-http", "activity feed proxy: could not record an HTTP exchange")
            if kind in ("request", "chunk") and payload is not None:
                self._backlog -= len(payload)
            if items and time.perf_counter() > deadline:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._drain)
                return

    def stop(self, reason: str) -> None:
        """Record what is queued, then end every session: requests still waiting end saying `reason`."""
        self._drain()
        self._scheduled = True  # nothing more is recorded
        for copy in self._copies.values():
            if copy.recorder is not None and copy.session is None:
                copy.recorder.close(reason)
        self._copies.clear()
        while self.sessions:
            _, recorder = self.sessions.popitem(last=False)
            recorder.close(reason)

    def _record(self, kind: str, exchange: Exchange, payload: Any, at: float) -> None:
        if kind == "request":
            self._request(exchange, payload, at)
            return
        copy = self._copies.get(exchange)
        if copy is None:
            return
        if kind == "response":
            self._response(copy, exchange, *payload)
        elif kind == "chunk":
            self._chunk(copy, payload, at)
        elif kind == "gap":
            copy.gap = True
            copy.sse = copy.json = None
        else:
            del self._copies[exchange]
            self._end(copy, exchange, payload, at)

    def _request(self, exchange: Exchange, body: bytes, at: float) -> None:
        session = _session_id(exchange.session_id)
        copy = self._copies[exchange] = _Copy(session, body, at)
        if exchange.method != "POST":
            return
        if session is None and b'"initialize"' in body:
            copy.held = True  # the response names the session it starts
            return
        self._recorder_for(copy).message(body, CLIENT_TO_SERVER, at=at)

    def _response(self, copy: _Copy, exchange: Exchange, status: int, headers: RawHeaders) -> None:
        copy.status = status
        if copy.held:
            copy.held = False
            copy.session = _session_id(header(headers, b"mcp-session-id")) or copy.session
            self._recorder_for(copy).message(copy.body, CLIENT_TO_SERVER, at=copy.body_at)
        content_type = (header(headers, b"content-type") or b"").lower()
        encoding = (header(headers, b"content-encoding") or b"identity").strip().lower()
        if encoding in (b"gzip", b"x-gzip", b"deflate"):
            copy.unzip = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # gzip or zlib, from the header
        elif encoding != b"identity":
            return  # a coding the proxy cannot read: relayed, not recorded
        if content_type.startswith(b"text/event-stream"):
            copy.sse = SseParser(self.max_message_bytes)
        elif content_type.startswith(b"application/json") or (content_type.endswith(b"+json")):
            copy.json = _Body()

    def _chunk(self, copy: _Copy, data: bytes, at: float) -> None:
        if copy.unzip is not None:
            try:
                data = copy.unzip.decompress(data)
            except zlib.error:
                copy.sse = copy.json = copy.unzip = None
                return
        if copy.sse is not None:
            recorder = self._recorder_for(copy)
            for event in copy.sse.feed(data):
                _record_line(recorder, event, at)
        elif copy.json is not None:
            copy.json.add(data, self.max_message_bytes)

    def _end(self, copy: _Copy, exchange: Exchange, problem: str | None, at: float) -> None:
        if copy.held:  # no response came: the request is recorded with the session it named
            copy.held = False
            self._recorder_for(copy).message(copy.body, CLIENT_TO_SERVER, at=copy.body_at)
        recorder = self._recorder_for(copy)
        if copy.json is not None and problem is None:
            _record_line(recorder, copy.json.message(), at)
        failure: str | dict[str, Any] | None = problem
        if failure is None and (copy.status >= 400 or copy.status == 202):
            failure = _http_failure(copy)
        if failure is not None and exchange.method == "POST":
            _fail_requests(recorder, copy.body, failure, refused=exchange.refused, at=at)
        if copy.session is None:
            recorder.close(problem or "no response: the exchange ended without it")
            return
        # A DELETE ends the session; a 404 says the upstream no longer knows it.
        ended = (exchange.method == "DELETE" and 200 <= copy.status < 300) or copy.status == 404
        if ended and (session := self.sessions.pop(copy.session, None)) is not None:
            session.close(f"no response: the session ended ({exchange.method} answered {copy.status})")

    def _recorder_for(self, copy: _Copy) -> ConnectionRecorder:
        if copy.recorder is None:
            session = copy.session
            if session is None:
                copy.recorder = self._make_recorder(None)
            elif (recorder := self.sessions.get(session)) is not None:
                self.sessions.move_to_end(session)
                copy.recorder = recorder
            else:
                recorder = self.sessions[session] = copy.recorder = self._make_recorder(session)
                if len(self.sessions) > self.max_sessions:
                    _, oldest = self.sessions.popitem(last=False)
                    oldest.close(f"no response recorded: over {self.max_sessions} sessions were open")
        return copy.recorder


def _session_id(raw: bytes | None) -> str | None:
    if not raw:
        return None
    return raw.decode("latin-1").strip()[:MAX_SESSION_ID] or None


def _record_line(recorder: ConnectionRecorder, line: Line, at: float) -> None:
    if isinstance(line, Oversized):
        recorder.oversized(line.head, line.tail, line.size, SERVER_TO_CLIENT, at=at)
    else:
        recorder.message(line, SERVER_TO_CLIENT, at=at)


def _http_failure(copy: _Copy) -> str | dict[str, Any]:
    """Why a POST answered `copy.status` got no JSON-RPC response: the JSON-RPC error its body holds (as
    a client reports it), else the status and the start of the body."""
    body = copy.json.message() if copy.json is not None else b""
    if isinstance(body, bytes) and body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(error := parsed.get("error"), dict):
            return error
    if copy.status == 202:
        return "no response: the server accepted the request without answering it (HTTP 202)"
    text = body.decode("utf-8", "replace").strip()[:_ERROR_PREVIEW] if isinstance(body, bytes) else ""
    return f"HTTP {copy.status}: {text}" if text else f"HTTP {copy.status}"


def _fail_requests(
    recorder: ConnectionRecorder, body: bytes, failure: str | dict[str, Any], *, refused: bool, at: float
) -> None:
    """End each request of a POST that got no response, as an error saying `failure` (a request that
    did get one is no longer waiting, and the recorder passes over it)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    messages = parsed if isinstance(parsed, list) else [parsed]
    if isinstance(failure, dict):
        error = {"code": failure.get("code"), "message": failure.get("message")}
    elif refused:
        # The client got this JSON-RPC error from the proxy itself.
        error = {"code": PROXY_ERROR_CODE, "message": f"{PROXY_ERROR_PREFIX}{failure}"}
    else:
        error = {"message": failure}
    for message in messages:
        if isinstance(message, dict) and "method" in message and "id" in message:
            reply = orjson.dumps({"jsonrpc": "2.0", "id": message["id"], "error": error})
            recorder.message(reply, SERVER_TO_CLIENT, at=at)
