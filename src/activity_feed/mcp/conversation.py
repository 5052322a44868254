"""The MCP conversation of an instrumented server, shared by the SDK's middleware and fastmcp's: which
messages are recorded (`record`), what each event says, and how a request ends.

A request ends one of four ways: a result (`success`; a tool result with `isError` is an `error`), a
JSON-RPC error (`error`, with its code and message in `data.mcp.error`), a cancellation by the client
(`error`, `cancelled: <reason>`), or the connection ending first (`error`, `connection closed before the
response`).

A client's `notifications/cancelled` reaches the instrumentation twice, in no fixed order: the SDK's
dispatcher first cancels the request (its middleware sees the cancellation) and then hands the
notification itself, with the reason, to the same middleware. Whichever comes second completes the
record: a request cancelled by its client waits a moment, shielded and bounded, for the reason.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, NamedTuple, TypeVar

import anyio

from activity_feed.mcp import messages, preview
from activity_feed.mcp.connections import ConnectionState, connection_state, request_key, sdk_dispatch_context
from activity_feed.mcp.details import (
    REQUEST_RESULT,
    TOOL_IS_ERROR,
    McpDetails,
    McpOutcome,
    ServerInfo,
    new_tuple,
)
from activity_feed.mcp.messages import TOOLS_CALL, RecordMode, discover_fell_back, field
from activity_feed.mcp.recorder import CallRecorder, RecordedCall, warn_once
from activity_feed.mcp.sinks import CallSink, default_sink
from activity_feed.mcp.trace import current_span_trace, parse_traceparent

INVALID_PARAMS = -32602
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"
# How long a request cancelled by its client waits for the notification that says why. The notification
# is handed to the middleware right after the cancellation, so it normally arrives at once.
CANCEL_REASON_SECONDS = 1.0

Direction = Literal["client_to_server", "server_to_client"]
CancelSignal = Literal["peer", "caller", "none", "unknown"]
INBOUND: Direction = "client_to_server"
T = TypeVar("T")


class Origin(NamedTuple):
    """Who a message is from: its connection, and what the client said about itself and its trace."""

    state: ConnectionState
    client_name: str | None
    client_version: str | None
    protocol_version: str | None
    trace_id: str | None
    span_id: str | None

    @property
    def user_source(self) -> str | None:
        name, version = self.client_name, self.client_version
        if name is None:
            return None
        return f"{name} {version}".strip() if version else name


def origin_of(
    session: Any,
    http_request: Any,
    protocol_version: str | None,
    meta: Mapping[str, Any] | None,
    initialize_params: Any = None,
) -> Origin:
    """Where a message came from (`initialize_params`: the client names itself in the message)."""
    state = connection_state(session, http_request)
    if initialize_params is None:
        client_params = session.client_params if session is not None else None
        info: Any = client_params.client_info if client_params is not None else None
        if info is None and meta:
            info = meta.get(CLIENT_INFO_META_KEY)  # a 2026 envelope that named no capabilities
    else:
        info = field(initialize_params, "clientInfo", "client_info")
        requested = field(initialize_params, "protocolVersion", "protocol_version")
        if isinstance(requested, str):
            protocol_version = requested
    if info is None:
        name = version = None
    elif type(info) is dict:
        name, version = info.get("name"), info.get("version")
    else:
        name, version = info.name, info.version
    traceparent = meta.get("traceparent") if meta else None
    trace = parse_traceparent(traceparent) if traceparent is not None else None
    if trace is None:
        trace = current_span_trace()
    return Origin(
        state,
        name if type(name) is str else None,
        version if type(version) is str else None,
        protocol_version,
        trace[0] if trace is not None else None,
        trace[1] if trace is not None else None,
    )


class Conversation:
    """Records the messages of every connection to one server through `recorder`."""

    def __init__(
        self,
        recorder: CallRecorder,
        *,
        record: RecordMode = "requests",
        server_name: str | None = None,
        server_version: str | None = None,
        source: str = "sdk",
    ) -> None:
        self.recorder = recorder
        self.record = record
        self.server = ServerInfo(server_name, server_version, source)

    def wants_request(self, method: str) -> bool:
        return messages.wants_request(self.record, method)

    @property
    def wants_notifications(self) -> bool:
        return self.record == "all"

    def start(
        self,
        origin: Origin,
        method: str,
        request_id: object,
        params: Any,
        *,
        notification: bool = False,
        direction: Direction = INBOUND,
        sink: CallSink | None = None,
    ) -> RequestCall | None:
        """Log a request or a notification as `pending`; None when the feed is disabled or logging
        failed. A request from the client that it may cancel is kept by its connection until it ends."""
        return self.begin(
            origin.state,
            origin.client_name,
            origin.client_version,
            origin.protocol_version,
            origin.trace_id,
            origin.span_id,
            method,
            request_id,
            params,
            notification,
            direction,
            sink,
        )

    def begin(
        self,
        state: ConnectionState,
        client_name: str | None,
        client_version: str | None,
        protocol_version: str | None,
        trace_id: str | None,
        span_id: str | None,
        method: str,
        request_id: object,
        params: Any,
        notification: bool = False,
        direction: Direction = INBOUND,
        sink: CallSink | None = None,
    ) -> RequestCall | None:
        """`start` with the origin's fields one by one: what runs inside every request, kept flat."""
        recorder = self.recorder
        try:
            if sink is None:
                sink = recorder.sink or default_sink()
                if getattr(sink, "enabled", True) is False:
                    return None  # no URL: skip building an event nobody will send
            if method == TOOLS_CALL and type(params) is dict:  # the SDK's wire params: the common case
                name = params.get("name")
                tool_name = name if type(name) is str else str(name)
                target: str | None = tool_name
                arguments = params.get("arguments")
                event_type = "tool_call"
                is_tool = True
            else:
                tool_name, target = messages.names(method, params)
                arguments = messages.arguments(method, params)
                is_tool = method == TOOLS_CALL
                event_type = "mcp_notification" if notification else "tool_call" if is_tool else "mcp_request"
            key = request_id if type(request_id) is not str else request_key(request_id)
            call = RequestCall(recorder, sink, method, key, is_tool)
            user_source = recorder.user_source
            if user_source is None and client_name is not None:
                user_source = f"{client_name} {client_version}" if client_version else client_name
            call.record = sink.start_call(
                tool_name,
                event_type=event_type,
                user_source=user_source,
                arguments=arguments if recorder.capture_arguments and type(arguments) is dict else None,
                details=new_tuple(
                    McpDetails,
                    (
                        method,
                        request_id,
                        direction,
                        state.transport,
                        protocol_version,
                        client_name,
                        client_version,
                        target,
                        trace_id,
                        span_id,
                        self.server,
                    ),
                ),
                session_id=state.session_id,
                correlation_id=trace_id,
            )
        except Exception:  # boundary: a message the instrumentation cannot record must not stop it
            warn_once("start", f"activity feed: could not record the start of an MCP {method}")
            return None
        if state.cancellable and request_id is not None and not notification and direction == INBOUND:
            call.state = state
            state.in_flight[key] = call
        return call

    def cancelled(self, origin: Origin, params: Any) -> None:
        """A client's `notifications/cancelled`: give its reason to the request it cancels."""
        state = origin.state
        try:
            call = state.in_flight.get(request_key(field(params, "requestId", "request_id")))
            if call is not None:
                reason = field(params, "reason")
                call.cancelled_by_peer(reason if isinstance(reason, str) else None)
        except Exception:  # boundary
            warn_once("cancel", "activity feed: could not read a notifications/cancelled")

    async def notification(
        self,
        method: str,
        params: Any,
        read_origin: Callable[[], Origin],
        call_next: Callable[[], Awaitable[T]],
        *,
        warn_key: str = "read",
        kind: str = "an MCP",
    ) -> T:
        """Pass an inbound notification on to `call_next`: a cancellation gives its reason to the request
        it cancels, and with `record="all"` the notification's handling is an event of its own."""
        recorded = self.wants_notifications
        if method != messages.CANCELLED and not recorded:
            return await call_next()
        call: RequestCall | None = None
        try:
            origin = read_origin()
            if method == messages.CANCELLED:
                self.cancelled(origin, params)
            if recorded:
                call = self.start(origin, method, None, params, notification=True)
        except Exception:  # boundary: a notification the instrumentation cannot read must still be handled
            warn_once(warn_key, f"activity feed: could not read {kind} {method} notification")
        if call is None:
            return await call_next()
        try:
            result = await call_next()
        except BaseException as exc:
            call.failed(exc)
            raise
        call.returned(None)
        return result


def rpc_error(exc: BaseException) -> tuple[int | None, str | None]:
    """The JSON-RPC error `(code, message)` the client receives for `exc`, when known: an `MCPError`'s
    own, `INVALID_PARAMS` for a validation error (the SDK's text, without pydantic's)."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if isinstance(code, int):
        message = getattr(error, "message", None)
        return code, message if isinstance(message, str) else None
    if type(exc).__name__ == "ValidationError":
        return INVALID_PARAMS, "Invalid request parameters"
    return None, None


def cancel_signal(session: Any) -> CancelSignal:
    """Why a request was cancelled, as far as its dispatch context tells: `peer` (the client sent
    `notifications/cancelled`), `caller` (an in-process client stopped waiting: its call is the
    request), `none` (the connection is closing) or `unknown`."""
    try:
        dctx = sdk_dispatch_context(session)
        inner = getattr(dctx, "_inner", dctx)
        if getattr(getattr(inner, "transport", None), "kind", None) == "direct":
            return "caller"
        event = getattr(inner, "cancel_requested", None)
        is_set = getattr(event, "is_set", None)
        if is_set is None:
            return "unknown"
        return "peer" if is_set() else "none"
    except Exception:  # boundary
        return "unknown"


class RequestCall(RecordedCall):
    """One MCP message's event in flight (a request, or a notification's handling)."""

    __slots__ = ("cancel_reason", "is_tool", "key", "method", "reason_arrived", "state")

    def __init__(
        self, recorder: CallRecorder, sink: CallSink, method: str, key: object, is_tool: bool
    ) -> None:
        # RecordedCall's fields, set here rather than through its __init__: this runs in every request.
        self.capture_results = recorder.capture_results
        self._started = time.perf_counter()
        self._done = False
        self._cause = None
        self.sink = sink
        self.record = None
        self.method = method
        self.key = key
        self.is_tool = is_tool
        self.state: ConnectionState | None = None  # set while its connection keeps it
        self.cancel_reason: str | None = None
        self.reason_arrived: anyio.Event | None = None

    def release(self) -> None:
        """Stop tracking the request (it has ended)."""
        state = self.state
        if state is not None and state.in_flight.get(self.key) is self:
            del state.in_flight[self.key]

    def returned(self, result: Any) -> None:
        try:
            capture = self.capture_results and result is not None
            if not self.is_tool:
                result_preview = messages.result_preview(self.method, result) if capture else None
                self.finish("success", None, result_preview, REQUEST_RESULT)
                return
            result_preview = preview.result_preview(result) if capture else None
            # A wire dict (what the SDK's middleware sees) is read directly: this runs in every tool call.
            if (result.get("isError") is True) if type(result) is dict else preview.is_error_result(result):
                self.finish("error", self.error_result_message(result), result_preview, TOOL_IS_ERROR)
            elif not self._done:  # `finish`, made flat for the busiest way a request ends
                self._done = True
                duration_ms = (time.perf_counter() - self._started) * 1000.0
                self.sink.end_call(self.record, "success", duration_ms, None, result_preview)
        except Exception:  # boundary
            warn_once("finish", f"activity feed: could not record the end of an MCP {self.method}")

    def failed(self, exc: BaseException, *, is_error: bool = False) -> None:
        """The request raised `exc` (not a cancellation): a JSON-RPC error, or `is_error` for a tool
        failure the client receives as an `isError` result."""
        try:
            code, wire_message = rpc_error(exc)
            if discover_fell_back(self.method, code):
                # A server without the 2026 discovery: the client falls back to `initialize`.
                self.finish("success", None, None)
                return
            message = preview.exception_message(exc)
            if is_error:  # the client received a result, not a JSON-RPC error
                code = wire_message = None
            self.finish("error", message, None, McpOutcome(self.is_tool, code, wire_message, is_error))
        except Exception:  # boundary
            warn_once("finish", f"activity feed: could not record the end of an MCP {self.method}")

    def cancelled_by_peer(self, reason: str | None) -> None:
        self.cancel_reason = reason or ""
        if self.reason_arrived is not None:
            self.reason_arrived.set()

    async def interrupted(self, signal: CancelSignal) -> None:
        """The request was cancelled: by its client (then with the reason its notification gives) or
        because the connection is closing. Runs inside a cancelled scope: every wait here is shielded
        and bounded."""
        try:
            if self.cancel_reason is None and signal in ("peer", "unknown") and self.state is not None:
                arrived = self.reason_arrived = anyio.Event()
                with anyio.move_on_after(CANCEL_REASON_SECONDS, shield=True):
                    await arrived.wait()
            reason = self.cancel_reason
            if reason is not None:
                message = f"cancelled: {reason}" if reason else "cancelled"
            elif signal in ("peer", "caller"):
                message = "cancelled"
            elif signal == "none":
                message = "connection closed before the response"
            else:
                message = "cancelled or interrupted before the response"
            self.finish("error", message, None)
        except Exception:  # boundary
            warn_once("finish", f"activity feed: could not record the end of an MCP {self.method}")
