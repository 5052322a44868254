"""`ActivityFeedServerMiddleware`: the official SDK's context-tier middleware (`async (ctx, call_next)`).

It sits in `Server.middleware` (the same list as `MCPServer.middleware`) and sees every inbound request
and notification before validation; what it records is the conversation's choice (`conversation.py`).
A tool call's failures reach it three ways, all recorded as `error`:

- an `isError` result: `MCPServer` turns a tool's exception, an unknown tool and invalid arguments
  into one (its text is the reason);
- a raised `MCPError` (the low-level `Server`, or malformed params) or `ValidationError`;
- any other exception a low-level handler raises.

`MCPServer` sanitises an unexpected exception to `Error executing tool X` before the result reaches
middleware, and reports the original only by logging it (`logger.exception`) inside the same task.
A logging filter on that logger copies the exception's cause onto the call in flight, so the feed
says `Error executing tool X: RuntimeError: ...`; the client still gets the SDK's sanitised text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio

from activity_feed.mcp.connections import connection_state, request_key
from activity_feed.mcp.conversation import (
    CLIENT_INFO_META_KEY,
    INBOUND,
    Conversation,
    Origin,
    RequestCall,
    cancel_signal,
    origin_of,
)
from activity_feed.mcp.details import McpDetails, new_tuple
from activity_feed.mcp.messages import CANCELLED, TOOLS_CALL, RecordMode
from activity_feed.mcp.outbound import current_origin, recording_session
from activity_feed.mcp.recorder import CallRecorder, RecordedCall, warn_once
from activity_feed.mcp.sinks import default_sink
from activity_feed.mcp.trace import current_span_trace, parse_traceparent

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

_MCPSERVER_LOGGER = "mcp.server.mcpserver.server"

_current_call: ContextVar[RecordedCall | None] = ContextVar("activity_feed_mcp_call", default=None)


class _CauseFilter(logging.Filter):
    """Copies the exception of a record logged during a recorded call onto that call; never filters."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            call = _current_call.get()
            if call is not None and record.exc_info and record.exc_info[1] is not None:
                call.note_cause(record.exc_info[1])
        except Exception:  # boundary: a logging filter must never break the SDK's logging
            pass
        return True


_cause_filter = _CauseFilter()


def install_cause_filter() -> None:
    """Attach the filter to `MCPServer`'s logger (once per process)."""
    target = logging.getLogger(_MCPSERVER_LOGGER)
    if _cause_filter not in target.filters:
        target.addFilter(_cause_filter)


class ActivityFeedServerMiddleware:
    """Records an SDK server's MCP conversation through `recorder` (`record`: see `instrument`)."""

    def __init__(
        self,
        recorder: CallRecorder,
        *,
        server_name: str | None = None,
        server_version: str | None = None,
        record: RecordMode = "requests",
    ) -> None:
        self.recorder = recorder
        self.conversation = Conversation(
            recorder, record=record, server_name=server_name, server_version=server_version, source="sdk"
        )

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None:
            return await self._notification(ctx, call_next)
        conversation = self.conversation
        if ctx.method != TOOLS_CALL and not conversation.wants_request(ctx.method):
            return await call_next(ctx)
        call = self._start(ctx)
        if call is None:
            return await call_next(ctx)
        call_token = _current_call.set(call) if call.is_tool else None
        origin_token = None
        state = call.state  # the connection, when the client may cancel by notification
        # With `record="all"` the handler's notifications (progress) are recorded on every era; otherwise
        # only a connection that carries server requests has anything worth wrapping the session for.
        if conversation.record == "all" or (
            state is not None and state.server_requests and conversation.record != "tools"
        ):
            recording = self._record_what_the_handler_sends(ctx)
            if recording is not None:
                origin_token, ctx = recording
        try:
            result = await call_next(ctx)
        except anyio.get_cancelled_exc_class():
            await call.interrupted(cancel_signal(ctx.session))
            raise
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            if state is not None:
                call.release()
            if call_token is not None:
                _current_call.reset(call_token)
            if origin_token is not None:
                current_origin.reset(origin_token)
        call.returned(result)
        return result

    def _start(self, ctx: ServerRequestContext[Any, Any]) -> RequestCall | None:
        """The request's call, logged `pending`. This runs inside every request, so it reads the
        context directly (`origin_of` says the same at more length)."""
        method = ctx.method
        params = ctx.params
        try:
            session = ctx.session
            state = connection_state(session, ctx.request)
            meta = params.get("_meta") if params else None
            if type(meta) is not dict:
                meta = None
            if method == "initialize":
                origin = origin_of(session, ctx.request, ctx.protocol_version, meta, initialize_params=params)
                name, version, protocol_version = (
                    origin.client_name,
                    origin.client_version,
                    origin.protocol_version,
                )
            else:
                protocol_version = ctx.protocol_version
                client_params = session.client_params
                info: Any = client_params.client_info if client_params is not None else None
                if info is not None:
                    name, version = info.name, info.version
                elif meta is not None and type(info := meta.get(CLIENT_INFO_META_KEY)) is dict:
                    name, version = info.get("name"), info.get("version")
                else:
                    name = version = None
            traceparent = meta.get("traceparent") if meta is not None else None
            trace = parse_traceparent(traceparent) if traceparent is not None else None
            if trace is None:
                trace = current_span_trace()
            if type(name) is not str:
                name = version = None
            elif type(version) is not str:
                version = None
            trace_id, span_id = trace if trace is not None else (None, None)
        except Exception:  # boundary: a context the instrumentation cannot read must not stop the request
            warn_once("read", f"activity feed: could not read an MCP {method} request")
            return None
        if method != TOOLS_CALL or type(params) is not dict:
            return self.conversation.begin(
                state, name, version, protocol_version, trace_id, span_id, method, ctx.request_id, params
            )
        # A tool call, the busiest message: `Conversation.begin` made flat.
        recorder = self.recorder
        try:
            sink = recorder.sink or default_sink()
            if getattr(sink, "enabled", True) is False:
                return None  # no URL: skip building an event nobody will send
            request_id = ctx.request_id
            key = request_id if type(request_id) is not str else request_key(request_id)
            call = RequestCall(recorder, sink, method, key, True)
            tool_name = params.get("name")
            if type(tool_name) is not str:
                tool_name = str(tool_name)
            user_source = recorder.user_source
            if user_source is None and name is not None:
                user_source = f"{name} {version}" if version else name
            arguments = params.get("arguments")
            details = (
                method,
                request_id,
                INBOUND,
                state.transport,
                protocol_version,
                name,
                version,
                tool_name,
                trace_id,
                span_id,
                self.conversation.server,
            )
            call.record = sink.start_call(
                tool_name,
                event_type="tool_call",
                user_source=user_source,
                arguments=arguments if recorder.capture_arguments and type(arguments) is dict else None,
                details=new_tuple(McpDetails, details),
                session_id=state.session_id,
                correlation_id=trace_id,
            )
        except Exception:  # boundary: a call the instrumentation cannot record must not stop it
            warn_once("start", "activity feed: could not record the start of an MCP tools/call")
            return None
        if state.cancellable:
            call.state = state
            state.in_flight[key] = call
        return call

    def _record_what_the_handler_sends(
        self, ctx: ServerRequestContext[Any, Any]
    ) -> tuple[Token[Origin | None], ServerRequestContext[Any, Any]] | None:
        """Hand the handler a session whose requests to the client are recorded, when the client could
        be asked something worth recording; the token resets the current origin afterwards."""
        conversation = self.conversation
        if not _may_ask_the_client(ctx, conversation):
            return None
        try:
            origin = self._origin(ctx)
        except Exception:  # boundary
            warn_once("read", f"activity feed: could not read an MCP {ctx.method} request")
            return None
        session = recording_session(ctx, conversation, origin)
        if session is None:
            return None
        return current_origin.set(origin), replace(ctx, session=session)

    def _origin(self, ctx: ServerRequestContext[Any, Any]) -> Origin:
        params = ctx.params
        meta = params.get("_meta") if params else None
        return origin_of(
            ctx.session,
            ctx.request,
            ctx.protocol_version,
            meta if isinstance(meta, Mapping) else None,
            initialize_params=params if ctx.method == "initialize" else None,
        )

    async def _notification(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        conversation = self.conversation
        method = ctx.method
        recorded = conversation.wants_notifications
        if method != CANCELLED and not recorded:
            return await call_next(ctx)
        call: RequestCall | None = None
        try:
            origin = self._origin(ctx)
            if method == CANCELLED:
                conversation.cancelled(origin, ctx.params)
            if recorded:
                call = conversation.start(origin, method, None, ctx.params, notification=True)
        except Exception:  # boundary
            warn_once("read", f"activity feed: could not read an MCP {method} notification")
        if call is None:
            return await call_next(ctx)
        try:
            result = await call_next(ctx)
        except BaseException as exc:
            call.failed(exc)
            raise
        call.returned(None)
        return result


def _may_ask_the_client(ctx: ServerRequestContext[Any, Any], conversation: Conversation) -> bool:
    """Whether the handler of `ctx` could send the client a request worth recording: the connection
    carries server requests, and the client declared sampling, elicitation or roots (pings are only
    recorded with `record="all"`)."""
    try:
        session = ctx.session
        if ctx.method == "initialize":
            return False  # `initialize` cannot be rewritten (the SDK commits the handshake from the wire)
        if conversation.record == "all":
            return True  # pings and notifications, which every era sends
        if not session.can_send_request:
            return False
        capabilities = session.client_capabilities
        return capabilities is not None and bool(
            capabilities.sampling or capabilities.elicitation or capabilities.roots
        )
    except Exception:  # boundary
        return False
