"""What the proxy records of one MCP connection: each JSON-RPC message it relayed, read off a copy.

`ConnectionRecorder.message(raw, direction)` takes one complete message (a JSON object or a batch array,
as bytes) and records it through a `CallSink` (a `FeedClient`): a request starts a `pending` event, its
response (paired by id, in either direction) ends it, `notifications/cancelled` ends the request it
names, and `close(reason)` ends whatever is still waiting. Anything that is not JSON-RPC is ignored.

One recorder per connection: request ids, the client's and the server's names and the protocol version
belong to a connection. Calls may come from any thread (a lock keeps them in order); nothing here does
I/O or raises, since the relay must never depend on the recorder.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import orjson

from activity_feed.client.intake import CallOutcome
from activity_feed.mcp import messages, preview
from activity_feed.mcp.connections import request_key
from activity_feed.mcp.details import REQUEST_RESULT, TOOL_IS_ERROR, McpDetails, McpOutcome, ServerInfo
from activity_feed.mcp.messages import CANCELLED, TOOLS_CALL, RecordMode, discover_fell_back
from activity_feed.mcp.sinks import CallSink, warn_once
from activity_feed.mcp.trace import parse_traceparent
from activity_feed.proxy.wire import PROXY_ERROR_PREFIX

Direction = Literal["client_to_server", "server_to_client"]
Transport = Literal["stdio", "http"]
CLIENT_TO_SERVER: Direction = "client_to_server"
SERVER_TO_CLIENT: Direction = "server_to_client"
SOURCE = "proxy"
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"
SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"
PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
# Requests waiting for their response, per connection. A peer that never answers must not make the
# proxy grow without bound: past this the oldest is ended, saying why.
MAX_PENDING = 10_000
# Of a message too large to record, only this much of each end is kept, to find its id.
EDGE_BYTES = 512

_ID_TYPES = (str, int, float)
_OPPOSITE: dict[Direction, Direction] = {
    CLIENT_TO_SERVER: SERVER_TO_CLIENT,
    SERVER_TO_CLIENT: CLIENT_TO_SERVER,
}
_ID = rb'(-?\d+|"(?:[^"\\]|\\.)*")'
# The id of a response at the top level of a message: right after `{` (and `"jsonrpc":"2.0",`), or as
# the last member before the closing `}` (a nested object's id would end in `}}`).
_HEAD_ID = re.compile(rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*' + _ID + rb"\s*,")
_TAIL_ID = re.compile(rb'[,{]\s*"id"\s*:\s*' + _ID + rb"\s*\}\s*$")


class ProxyOutcome(NamedTuple):
    """A request's end as `McpOutcome`, plus what an `initialize` result says about the server."""

    outcome: McpOutcome
    server: ServerInfo | None = None
    protocol_version: str | None = None

    def outcome_data(self, result_preview: str | None) -> Mapping[str, Any] | None:
        data = dict(self.outcome.outcome_data(result_preview) or {})
        extra: dict[str, Any] = {}
        if self.server is not None and self.server.name is not None:
            extra["server"] = {"name": self.server.name, "version": self.server.version}
        if self.protocol_version is not None:
            extra["protocol_version"] = self.protocol_version
        if extra:
            data["mcp"] = {**data.get("mcp", {}), **extra}
        return data or None


class _Pending:
    """A request seen going one way, waiting for its response from the other."""

    __slots__ = ("method", "record", "started")

    def __init__(self, method: str, record: Any, started: float) -> None:
        self.method = method
        self.record = record  # the sink's record of its event; None when the request is not recorded
        self.started = started


class ConnectionRecorder:
    """Records the messages of one MCP connection through `sink`.

    `session_id` names the connection in every event (may be set later, e.g. once an HTTP server names
    its session); `user_source`, when given, replaces the client's own name and version.
    """

    def __init__(
        self,
        sink: CallSink,
        *,
        transport: Transport,
        session_id: str | None = None,
        record: RecordMode = "requests",
        user_source: str | None = None,
        capture_arguments: bool = True,
        capture_results: bool = True,
    ) -> None:
        self.sink = sink
        self.transport = transport
        self.session_id = session_id
        self.record = messages.check_record_mode(record)
        self.user_source = user_source
        self.capture_arguments = capture_arguments
        self.capture_results = capture_results
        self.client_name: str | None = None
        self.client_version: str | None = None
        self.protocol_version: str | None = None
        self.server = ServerInfo(None, None, SOURCE)
        self._pending: OrderedDict[tuple[Direction, object], _Pending] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests still waiting for their response."""
        return len(self._pending)

    def message(self, raw: bytes | str, direction: Direction, *, at: float | None = None) -> None:
        """Record one complete message that went `direction` at `at` (`time.perf_counter()`, default
        now: when the relay forwarded it); anything not JSON-RPC is ignored."""
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if at is None:
            at = time.perf_counter()
        with self._lock:
            if self._closed:
                return
            try:
                if type(parsed) is list:
                    for item in parsed:
                        self._one(item, direction, at)
                else:
                    self._one(parsed, direction, at)
            except Exception:  # boundary: a message the recorder cannot read is still relayed
                warn_once("proxy-message", "activity feed proxy: could not record a message")

    def oversized(
        self, head: bytes, tail: bytes, size: int, direction: Direction, *, at: float | None = None
    ) -> None:
        """A message of `size` bytes too large to record, known by its first and last bytes: when it is
        the response to a request in flight, that request ends without its result."""
        found = _HEAD_ID.match(head[:EDGE_BYTES]) or _TAIL_ID.search(tail[-EDGE_BYTES:])
        if found is None:
            return
        try:
            request_id = orjson.loads(found.group(1))
        except orjson.JSONDecodeError:
            return
        if at is None:
            at = time.perf_counter()
        with self._lock:
            pending = self._pending.pop((_OPPOSITE[direction], request_key(request_id)), None)
            if pending is not None and pending.record is not None:
                note = f"[a {size / (1024 * 1024):.1f} MiB response, too large to record]"
                outcome = McpOutcome(tool=pending.method == TOOLS_CALL)
                self._finish(pending, "success", None, note, outcome, at)

    def close(self, reason: str) -> None:
        """The connection ended: every request still waiting ends as an error saying `reason`; later
        messages are ignored."""
        at = time.perf_counter()
        with self._lock:
            self._closed = True
            waiting, self._pending = list(self._pending.values()), OrderedDict()
            for pending in waiting:
                if pending.record is not None:
                    self._finish(pending, "error", reason, None, None, at)

    # Each kind of message.

    def _one(self, message: Any, direction: Direction, at: float) -> None:
        if type(message) is not dict:
            return
        if "id" in message and type(message["id"]) not in _ID_TYPES:
            return  # null (an error about a message the peer could not read) or not JSON-RPC at all
        method = message.get("method")
        if type(method) is str:
            if "id" in message:
                self._request(message, method, direction, at)
            else:
                self._notification(message, method, direction, at)
        elif "id" in message and ("result" in message or "error" in message):
            self._response(message, direction, at)

    def _request(self, message: dict[str, Any], method: str, direction: Direction, at: float) -> None:
        params = message.get("params")
        if type(params) is not dict:
            params = None
        self._learn_client(method, params)
        record = None
        if messages.wants_request(self.record, method):
            record = self._start(
                method,
                message["id"],
                params,
                direction,
                "tool_call" if method == TOOLS_CALL else "mcp_request",
            )
        key = (direction, request_key(message["id"]))
        self._pending.pop(key, None)  # an id used again: the newer request is the one answered
        self._pending[key] = _Pending(method, record, at)
        if len(self._pending) > MAX_PENDING:
            _, oldest = self._pending.popitem(last=False)
            if oldest.record is not None:
                message_text = f"no response recorded: over {MAX_PENDING} requests were waiting"
                self._finish(oldest, "error", message_text, None, None, at)

    def _response(self, message: dict[str, Any], direction: Direction, at: float) -> None:
        pending = self._pending.pop((_OPPOSITE[direction], request_key(message["id"])), None)
        if pending is None:
            return
        method = pending.method
        result = message.get("result")
        server: ServerInfo | None = None
        protocol_version: str | None = None
        if type(result) is dict and (method == "initialize" or self.server.name is None):
            server, protocol_version = self._learn_server(result)
        if pending.record is None:
            return
        error = message.get("error")
        if "error" in message:
            code = error.get("code") if type(error) is dict else None
            text = error.get("message") if type(error) is dict else None
            code = code if type(code) is int else None
            text = text if type(text) is str else None
            if discover_fell_back(method, code) and not (text or "").startswith(PROXY_ERROR_PREFIX):
                # A server without the 2026 discovery: the client falls back to `initialize`.
                self._finish(pending, "success", None, None, None, at)
                return
            failure = McpOutcome(method == TOOLS_CALL, code, text)
            reason = preview.clean_message(text) if text else f"JSON-RPC error {code}"
            self._finish(pending, "error", reason, None, failure, at)
            return
        if method == TOOLS_CALL:
            result_preview = preview.result_preview(result) if self.capture_results else None
            if preview.is_error_result(result):
                self._finish(
                    pending, "error", preview.error_result_message(result), result_preview, TOOL_IS_ERROR, at
                )
            else:
                self._finish(pending, "success", None, result_preview, None, at)
            return
        result_preview = (
            messages.result_preview(method, result) if self.capture_results and result is not None else None
        )
        outcome: CallOutcome = REQUEST_RESULT
        if server is not None or protocol_version is not None:
            outcome = ProxyOutcome(REQUEST_RESULT, server, protocol_version)
        self._finish(pending, "success", None, result_preview, outcome, at)

    def _notification(self, message: dict[str, Any], method: str, direction: Direction, at: float) -> None:
        params = message.get("params")
        if type(params) is not dict:
            params = None
        if method == CANCELLED and params is not None:
            # Sent the same way as the request it cancels.
            pending = self._pending.pop((direction, request_key(params.get("requestId"))), None)
            if pending is not None and pending.record is not None:
                reason = params.get("reason")
                text = f"cancelled: {reason}" if type(reason) is str and reason else "cancelled"
                self._finish(pending, "error", text, None, None, at)
        if self.record == "all":
            record = self._start(method, None, params, direction, "mcp_notification")
            if record is not None:
                self.sink.end_call(record, "success", None, None, None)

    # Recording.

    def _learn_client(self, method: str, params: dict[str, Any] | None) -> None:
        if params is None:
            return
        info: Any = None
        if method == "initialize":
            info = params.get("clientInfo")
            requested = params.get("protocolVersion")
            if type(requested) is str and self.protocol_version is None:
                self.protocol_version = requested
        meta = params.get("_meta")
        if type(meta) is dict:  # a 2026-era request names its client and version in every envelope
            if info is None:
                info = meta.get(CLIENT_INFO_META_KEY)
            version = meta.get(PROTOCOL_VERSION_META_KEY)
            if type(version) is str:
                self.protocol_version = version
        if type(info) is dict and type(info.get("name")) is str:
            version = info.get("version")
            self.client_name = info["name"]
            self.client_version = version if type(version) is str else None

    def _learn_server(self, result: dict[str, Any]) -> tuple[ServerInfo | None, str | None]:
        """The server's name and version from an `initialize` result, or from the stamp a 2026-era
        server puts in its results' `_meta`; the protocol version `initialize` agreed."""
        info = result.get("serverInfo")
        if info is None:
            meta = result.get("_meta")
            info = meta.get(SERVER_INFO_META_KEY) if type(meta) is dict else None
        server = None
        if type(info) is dict and type(info.get("name")) is str:
            version = info.get("version")
            server = self.server = ServerInfo(info["name"], version if type(version) is str else None, SOURCE)
        agreed = result.get("protocolVersion")
        if type(agreed) is str:
            self.protocol_version = agreed
            return server, agreed
        return server, None

    def _start(
        self,
        method: str,
        request_id: object,
        params: dict[str, Any] | None,
        direction: Direction,
        event_type: str,
    ) -> Any:
        tool_name, target = messages.names(method, params)
        arguments = messages.arguments(method, params) if self.capture_arguments else None
        trace = None
        meta = params.get("_meta") if params is not None else None
        if type(meta) is dict:
            trace = parse_traceparent(meta.get("traceparent"))
        user_source = self.user_source
        if user_source is None and self.client_name is not None:
            version = self.client_version
            user_source = f"{self.client_name} {version}" if version else self.client_name
        details = McpDetails(
            method,
            request_id,
            direction,
            self.transport,
            self.protocol_version,
            self.client_name,
            self.client_version,
            target,
            trace[0] if trace is not None else None,
            trace[1] if trace is not None else None,
            self.server,
        )
        try:
            return self.sink.start_call(
                tool_name,
                event_type=event_type,
                user_source=user_source,
                arguments=arguments if type(arguments) is dict else None,
                details=details,
                session_id=self.session_id,
                correlation_id=trace[0] if trace is not None else None,
            )
        except Exception:  # boundary: the relay goes on without this event
            warn_once("proxy-start", f"activity feed proxy: could not record an MCP {method}")
            return None

    def _finish(
        self,
        pending: _Pending,
        status: Literal["success", "error"],
        error_message: str | None,
        result_preview: str | None,
        outcome: CallOutcome | None,
        at: float,
    ) -> None:
        duration_ms = max(0.0, (at - pending.started) * 1000.0)
        try:
            if error_message is not None:
                # The client redacts `data` only; an error message can quote arguments too.
                error_message = self.sink.redact_text(error_message)
            self.sink.end_call(pending.record, status, duration_ms, error_message, result_preview, outcome)
        except Exception:  # boundary
            warn_once(
                "proxy-finish", f"activity feed proxy: could not record the end of an MCP {pending.method}"
            )
