"""`ActivityFeedServerMiddleware`: the official SDK's context-tier middleware (`async (ctx, call_next)`).

It sits in `Server.middleware` (the same list as `MCPServer.middleware`), sees every inbound message
before validation, and records `tools/call` only; everything else passes straight through. Failures
reach it three ways, all recorded as `error`:

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
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

from activity_feed.mcp.recorder import CallRecorder, ToolCall, warn_once

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

TOOLS_CALL = "tools/call"
_MCPSERVER_LOGGER = "mcp.server.mcpserver.server"

_current_call: ContextVar[ToolCall | None] = ContextVar("activity_feed_mcp_call", default=None)


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


def client_source(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """`name version` from the client info the MCP client sent (handshake or 2026 request envelope)."""
    params = ctx.session.client_params
    info = params.client_info if params is not None else None
    if info is None:
        return None
    name, version = info.name, info.version
    return f"{name} {version}".strip() if version else name


class McpCallDetails(NamedTuple):
    """A `tools/call` request's `data.mcp`, built from these fields on the client's worker, not inside
    the call. A tuple of plain values: the garbage collector stops tracking it, so the many that wait
    for a starved worker cost the host nothing at each collection."""

    request_id: object
    protocol_version: str | None
    transport: str
    server_name: str | None

    def extra_data(self) -> Mapping[str, Any]:
        return {
            "mcp": {
                "method": TOOLS_CALL,
                "request_id": self.request_id,
                "protocol_version": self.protocol_version,
                "transport": self.transport,
                "server_name": self.server_name,
            }
        }


class McpToolCall(ToolCall):
    """A `tools/call` request's call, whose details are the request's (`McpCallDetails`)."""

    __slots__ = ("mcp_details",)
    mcp_details: McpCallDetails

    def details(self) -> McpCallDetails:
        return self.mcp_details


class ActivityFeedServerMiddleware:
    """Records every `tools/call` through `recorder`; `server_name` goes into `data.mcp`."""

    def __init__(self, recorder: CallRecorder, *, server_name: str | None = None) -> None:
        self.recorder = recorder
        self.server_name = server_name

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != TOOLS_CALL:
            return await call_next(ctx)
        call = self._start(ctx)
        if call is None:
            return await call_next(ctx)
        token = _current_call.set(call)
        try:
            result = await call_next(ctx)
        except BaseException as exc:
            call.raised(exc)
            raise
        finally:
            _current_call.reset(token)
        call.returned(result)
        return result

    def _start(self, ctx: ServerRequestContext[Any, Any]) -> ToolCall | None:
        try:
            recorder = self.recorder
            client = recorder.client_for_call()
            if client is None:
                return None
            params = ctx.params or {}
            name = params.get("name")
            arguments = params.get("arguments")
            call = McpToolCall(
                recorder,
                client,
                name if isinstance(name, str) else str(name),
                client_source(ctx),
                arguments if isinstance(arguments, dict) else None,
            )
            # The SDK's middleware context does not name the transport; it carries the HTTP request for
            # the HTTP transports (streamable HTTP, SSE) and nothing for stdio (or in process).
            transport = "stdio" if ctx.request is None else "http"
            call.mcp_details = McpCallDetails(
                ctx.request_id, ctx.protocol_version, transport, self.server_name
            )
        except Exception:  # boundary: a context the instrumentation cannot read must not stop the call
            warn_once("read", "activity feed: could not read an MCP tools/call request")
            return None
        return recorder.record_start(call)
