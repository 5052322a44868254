"""`ActivityFeedMiddleware` for the `fastmcp` package (4.x), imported only when used.

    from activity_feed.mcp.fastmcp import ActivityFeedMiddleware
    server.add_middleware(ActivityFeedMiddleware(client))

(`instrument(server)` does exactly this for a `FastMCP` server.) fastmcp reports failures as
exceptions out of `call_next`: `ToolError` for a raising tool (its message carries the original
exception's), `NotFoundError` for an unknown tool, `ValidationError` for invalid arguments.
"""

from __future__ import annotations

from typing import Any

import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult

from activity_feed.mcp.recorder import ActivityClient, CallRecorder, ToolCall, warn_once


class ActivityFeedMiddleware(Middleware):
    """Records every fastmcp tool call as a `tool_call` event (see `activity_feed.mcp.instrument`)."""

    def __init__(
        self,
        client: ActivityClient | None = None,
        *,
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

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        call = self._start(context)
        if call is None:
            return await call_next(context)
        try:
            result = await call_next(context)
        except BaseException as exc:
            call.raised(exc)
            raise
        call.returned(result)
        return result

    def _start(self, context: MiddlewareContext[mt.CallToolRequestParams]) -> ToolCall | None:
        try:
            message = context.message
            mcp: dict[str, Any] = {"method": context.method or "tools/call"}
            source = None
            fctx = context.fastmcp_context
            if fctx is not None:
                mcp["server_name"] = fctx.fastmcp.name
                mcp["transport"] = fctx.transport
                if fctx.request_context is not None:
                    mcp["request_id"] = fctx.request_id
                    session = fctx.session
                    mcp["protocol_version"] = session.protocol_version
                    params = session.client_params
                    if params is not None:
                        info = params.client_info
                        source = f"{info.name} {info.version}".strip() if info.version else info.name
            return self.recorder.start(
                message.name, arguments=message.arguments, user_source=source, extra={"mcp": mcp}
            )
        except Exception:  # boundary: a context the instrumentation cannot read must not stop the call
            warn_once("read-fastmcp", "activity feed: could not read a fastmcp tool call")
            return None
