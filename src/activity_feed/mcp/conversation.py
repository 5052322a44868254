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

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import anyio

from activity_feed.mcp import messages, preview
from activity_feed.mcp.connections import Peer, peer_of, request_key, sdk_dispatch_context
from activity_feed.mcp.details import McpDetails, McpOutcome
from activity_feed.mcp.messages import PING, TOOLS_CALL, RecordMode, field
from activity_feed.mcp.recorder import CallRecorder, RecordedCall, warn_once
from activity_feed.mcp.sinks import CallSink
from activity_feed.mcp.trace import trace_of

METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"
# How long a request cancelled by its client waits for the notification that says why. The notification
# is handed to the middleware right after the cancellation, so it normally arrives at once.
CANCEL_REASON_SECONDS = 1.0

Direction = Literal["client_to_server", "server_to_client"]
CancelSignal = Literal["peer", "caller", "none", "unknown"]


class Origin(NamedTuple):
    """Who a message is from: the connection and what the client said about itself and its trace."""

    peer: Peer
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
        self.server_name = server_name
        self.server_version = server_version
        self.source = source

    def wants_request(self, method: str) -> bool:
        if method == TOOLS_CALL:
            return True
        if self.record == "tools":
            return False
        return method != PING or self.record == "all"

    @property
    def wants_notifications(self) -> bool:
        return self.record == "all"

    def origin(
        self,
        session: Any,
        http_request: Any,
        protocol_version: str | None,
        meta: Mapping[str, Any] | None,
        initialize_params: Any = None,
    ) -> Origin:
        """Where a message came from (`initialize_params`: the client info is in the message itself)."""
        peer = peer_of(session, http_request)
        if initialize_params is not None:
            info = field(initialize_params, "clientInfo", "client_info")
            version = field(initialize_params, "protocolVersion", "protocol_version") or protocol_version
            protocol_version = version if isinstance(version, str) else protocol_version
        else:
            params = session.client_params if session is not None else None
            info = params.client_info if params is not None else None
            if info is None and meta:
                info = meta.get(CLIENT_INFO_META_KEY)
        name = field(info, "name")
        version = field(info, "version")
        trace = trace_of(meta)
        return Origin(
            peer,
            name if isinstance(name, str) else None,
            version if isinstance(version, str) else None,
            protocol_version,
            trace[0] if trace is not None else None,
            trace[1] if trace is not None else None,
        )

    def start(
        self,
        origin: Origin,
        method: str,
        request_id: object,
        params: Any,
        *,
        notification: bool = False,
        direction: Direction = "client_to_server",
        sink: CallSink | None = None,
    ) -> RequestCall | None:
        """Log a request or a notification as `pending`; None when the feed is disabled or logging
        failed. A request from the client is tracked until it ends (`release()`)."""
        try:
            recorder = self.recorder
            if sink is None:
                sink = recorder.client_for_call()
                if sink is None:
                    return None  # no URL: skip building an event nobody will send
            tool_name, target = messages.names(method, params)
            is_tool = method == TOOLS_CALL
            event_type = "mcp_notification" if notification else "tool_call" if is_tool else "mcp_request"
            peer = origin.peer
            inbound = not notification and request_id is not None and direction == "client_to_server"
            state = peer.state if inbound else None
            call = RequestCall(recorder, sink, method, state, request_key(request_id), is_tool)
            details = McpDetails(
                method,
                request_id,
                direction,
                peer.transport,
                origin.protocol_version,
                origin.client_name,
                origin.client_version,
                self.server_name,
                self.server_version,
                target,
                origin.trace_id,
                origin.span_id,
                self.source,
            )
            arguments = messages.arguments(method, params)
        except Exception:  # boundary: a message the instrumentation cannot read must not stop it
            warn_once("read", f"activity feed: could not read an MCP {method} message")
            return None
        started = recorder.begin(
            call,
            tool_name,
            event_type=event_type,
            user_source=origin.user_source,
            arguments=arguments,
            details=details,
            session_id=peer.session_id,
            correlation_id=origin.trace_id,
        )
        if started is not None and state is not None:
            state.in_flight[call.key] = call
        return call if started is not None else None

    def cancelled(self, origin: Origin, params: Any) -> None:
        """A client's `notifications/cancelled`: give its reason to the request it cancels."""
        state = origin.peer.state
        if state is None:
            return
        try:
            call = state.in_flight.get(request_key(field(params, "requestId", "request_id")))
            if call is not None:
                reason = field(params, "reason")
                call.cancelled_by_peer(reason if isinstance(reason, str) else None)
        except Exception:  # boundary
            warn_once("cancel", "activity feed: could not read a notifications/cancelled")


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
        self, recorder: CallRecorder, sink: CallSink, method: str, state: Any, key: object, is_tool: bool
    ) -> None:
        super().__init__(recorder, sink)
        self.method = method
        self.state = state
        self.key = key
        self.is_tool = is_tool
        self.cancel_reason: str | None = None
        self.reason_arrived: anyio.Event | None = None

    def release(self) -> None:
        """Stop tracking the request (it has ended)."""
        state = self.state
        if state is not None and state.in_flight.get(self.key) is self:
            del state.in_flight[self.key]

    def returned(self, result: Any) -> None:
        try:
            result_preview = (
                messages.result_preview(self.method, result)
                if self.capture_results and result is not None
                else None
            )
            if self.is_tool:
                if preview.is_error_result(result):
                    message = self.error_result_message(result)
                    self.finish("error", message, result_preview, McpOutcome(result_preview, is_error=True))
                else:
                    self.finish("success", None, result_preview, McpOutcome(result_preview))
            else:
                outcome = McpOutcome(result_preview) if result_preview is not None else None
                self.finish("success", None, None, outcome)
        except Exception:  # boundary
            warn_once("finish", f"activity feed: could not record the end of an MCP {self.method}")

    def failed(self, exc: BaseException, *, is_error: bool = False) -> None:
        """The request raised `exc` (not a cancellation): a JSON-RPC error, or `is_error` for a tool
        failure the client receives as an `isError` result."""
        try:
            code, wire_message = rpc_error(exc)
            if code == METHOD_NOT_FOUND and self.method == "server/discover":
                # A server without the 2026 discovery: the client falls back to `initialize`.
                self.finish("success", None, None)
                return
            message = preview.exception_message(exc)
            if is_error:  # the client received a result, not a JSON-RPC error
                code = wire_message = None
            self.finish("error", message, None, McpOutcome(None, code, wire_message, is_error))
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
