"""`ActivityFeedMiddleware` for the `fastmcp` package (4.x), imported only when used.

    from activity_feed.mcp.fastmcp import ActivityFeedMiddleware
    server.add_middleware(ActivityFeedMiddleware(client))

(`instrument(server)` does exactly this for a `FastMCP` server.) fastmcp runs its middleware's
`on_request` once for every request and `on_notification` once for every notification, whichever way it
dispatches them; the events are the SDK middleware's (`conversation.py`), with `data.mcp.source`
`fastmcp`. fastmcp reports a tool's failure as an exception out of `call_next` (`ToolError` for a raising
tool, with the original exception's message; `NotFoundError` for an unknown tool; `ValidationError` for
invalid arguments), which the client receives as an `isError` result.

What a tool sends the client (sampling, elicitation) is not recorded under fastmcp: fastmcp hands its
tools the SDK's session before its middleware runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

from activity_feed.mcp.connections import request_key
from activity_feed.mcp.conversation import Conversation, Origin, RequestCall, cancel_signal, origin_of
from activity_feed.mcp.details import ServerInfo
from activity_feed.mcp.messages import CANCELLED, TOOLS_CALL, RecordMode, check_record_mode, field
from activity_feed.mcp.recorder import ActivityClient, CallRecorder, warn_once

# fastmcp's transport names, as the feed's.
_TRANSPORTS = {"stdio": "stdio", "sse": "http", "streamable-http": "http", "http": "http"}


class ActivityFeedMiddleware(Middleware):
    """Records a fastmcp server's MCP conversation (see `activity_feed.mcp.instrument`)."""

    def __init__(
        self,
        client: ActivityClient | None = None,
        *,
        record: RecordMode = "requests",
        user_source: str | None = None,
        capture_arguments: bool = True,
        capture_results: bool = True,
        recorder: CallRecorder | None = None,
    ) -> None:
        self.recorder = recorder or CallRecorder(
            client,
            user_source=user_source,
            capture_arguments=capture_arguments,
            capture_results=capture_results,
        )
        self.conversation = Conversation(self.recorder, record=check_record_mode(record), source="fastmcp")

    async def on_request(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        method = context.method or ""
        conversation = self.conversation
        if not conversation.wants_request(method):
            return await call_next(context)
        call, session = self._start(context, method)
        if call is None:
            return await call_next(context)
        try:
            result = await call_next(context)
        except anyio.get_cancelled_exc_class():
            await call.interrupted(cancel_signal(session))
            raise
        except BaseException as exc:
            call.failed(exc, is_error=method == TOOLS_CALL)
            raise
        finally:
            call.release()
        call.returned(result)
        return result

    async def on_notification(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        method = context.method or ""
        conversation = self.conversation
        recorded = conversation.wants_notifications
        if method != CANCELLED and not recorded:
            return await call_next(context)
        call: RequestCall | None = None
        try:
            origin, _, _ = self._origin(context, method)
            if method == CANCELLED:
                conversation.cancelled(origin, context.message)
            if recorded:
                call = conversation.start(origin, method, None, context.message, notification=True)
        except Exception:  # boundary
            warn_once("read-fastmcp", f"activity feed: could not read a fastmcp {method} notification")
        if call is None:
            return await call_next(context)
        try:
            result = await call_next(context)
        except BaseException as exc:
            call.failed(exc)
            raise
        call.returned(None)
        return result

    def _start(self, context: MiddlewareContext[Any], method: str) -> tuple[RequestCall | None, Any]:
        try:
            origin, request_id, session = self._origin(context, method)
            params = field(context.message, "params") if method == "initialize" else context.message
        except Exception:  # boundary: a context the instrumentation cannot read must not stop the call
            warn_once("read-fastmcp", f"activity feed: could not read a fastmcp {method} request")
            return None, None
        return self.conversation.start(origin, method, request_id, params), session

    def _origin(self, context: MiddlewareContext[Any], method: str) -> tuple[Origin, Any, Any]:
        """The message's origin, request id and SDK session."""
        fctx = context.fastmcp_context
        conversation = self.conversation
        if fctx is not None and conversation.server.name is None:
            conversation.server = ServerInfo(fctx.fastmcp.name, fctx.fastmcp.version, "fastmcp")
        request = fctx.request_context if fctx is not None else None
        session = request.session if request is not None else None
        meta = request.meta if request is not None else None
        initialize_params = field(context.message, "params") if method == "initialize" else None
        origin = origin_of(
            session,
            request.request if request is not None else None,
            request.protocol_version if request is not None else None,
            meta if isinstance(meta, Mapping) else None,
            initialize_params=initialize_params,
        )
        transport = _TRANSPORTS.get(fctx.transport or "") if fctx is not None else None
        if transport is not None:
            origin.state.transport = transport  # fastmcp knows what it serves on
        # fastmcp hands on the request id as text; the SDK's is a number when the client's was.
        request_id = request_key(request.request_id) if request is not None else None
        return origin, request_id, session
