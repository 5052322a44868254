"""What the server sends the client: `sampling/createMessage`, `elicitation/create`, `roots/list` (and,
with `record="all"`, pings and notifications), recorded with direction `server_to_client`.

The SDK sends them through one of two channels, both its public `Outbound` protocol: the request's own
(a handler's `ctx.session.elicit...`, routed onto the request's stream) and the connection's standalone
one (`Connection.outbound`). The middleware hands the handler a `ServerSession` over a recording wrapper
of the request's channel, and wraps the connection's channel once; each wrapper passes every call
through unchanged. Only handshake-era connections carry server requests (2026-era ones refuse them).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from activity_feed.mcp.connections import ConnectionState
from activity_feed.mcp.conversation import Conversation, Origin, RequestCall
from activity_feed.mcp.recorder import warn_once
from activity_feed.mcp.trace import current_span_trace

if TYPE_CHECKING:
    import anyio

# The origin of the request being handled, for what a handler sends on the connection's channel.
current_origin: ContextVar[Origin | None] = ContextVar("activity_feed_mcp_origin", default=None)


async def _send_request(
    conversation: Conversation, origin: Origin, inner: Any, method: str, params: Any, opts: Any
) -> dict[str, Any]:
    if not conversation.wants_request(method):
        result: dict[str, Any] = await inner.send_raw_request(method, params, opts)
        return result
    request_id = opts.get("request_id") if isinstance(opts, Mapping) else None
    call = conversation.start(origin, method, request_id, params, direction="server_to_client")
    if call is None:
        result = await inner.send_raw_request(method, params, opts)
        return result
    try:
        result = await inner.send_raw_request(method, params, opts)
    except Exception as exc:
        call.failed(exc)
        raise
    except BaseException:  # the handler was cancelled while it waited for the client
        call.finish("error", "cancelled", None)
        raise
    call.returned(result)
    return result


async def _notify(conversation: Conversation, origin: Origin, method: str, params: Any, send: Any) -> None:
    call: RequestCall | None = None
    if conversation.wants_notifications:
        call = conversation.start(
            origin, method, None, params, notification=True, direction="server_to_client"
        )
    if call is None:
        await send
        return
    try:
        await send
    except Exception as exc:
        call.failed(exc)
        raise
    except BaseException:
        call.finish("error", "cancelled", None)
        raise
    call.returned(None)


class RecordingDispatchContext:
    """A request's dispatch context that records what the handler sends the client through it."""

    def __init__(self, inner: Any, conversation: Conversation, origin: Origin) -> None:
        self.activity_feed_inner = inner
        self._conversation = conversation
        self._origin = origin

    @property
    def transport(self) -> Any:
        return self.activity_feed_inner.transport

    @property
    def can_send_request(self) -> bool:
        return bool(self.activity_feed_inner.can_send_request)

    @property
    def request_id(self) -> Any:
        return self.activity_feed_inner.request_id

    @property
    def message_metadata(self) -> Any:
        return self.activity_feed_inner.message_metadata

    @property
    def cancel_requested(self) -> anyio.Event:
        event: anyio.Event = self.activity_feed_inner.cancel_requested
        return event

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        return await _send_request(
            self._conversation, self._origin, self.activity_feed_inner, method, params, opts
        )

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        send = self.activity_feed_inner.notify(method, params, opts)
        await _notify(self._conversation, self._origin, method, params, send)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        send = self.activity_feed_inner.progress(progress, total, message)
        params = {"progress": progress, "total": total, "message": message}
        await _notify(self._conversation, self._origin, "notifications/progress", params, send)


class RecordingChannel:
    """A connection's standalone channel that records what the server sends the client through it."""

    def __init__(
        self, inner: Any, conversation: Conversation, state: ConnectionState, connection: Any
    ) -> None:
        self.activity_feed_inner = inner
        self._conversation = conversation
        self._state = state
        self._connection = connection

    def _origin(self) -> Origin:
        origin = current_origin.get()
        if origin is not None:
            return origin
        params = self._connection.client_params
        info = params.client_info if params is not None else None
        trace = current_span_trace()
        return Origin(
            self._state,
            info.name if info is not None else None,
            info.version if info is not None else None,
            self._connection.protocol_version,
            trace[0] if trace is not None else None,
            trace[1] if trace is not None else None,
        )

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        return await _send_request(
            self._conversation, self._origin(), self.activity_feed_inner, method, params, opts
        )

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        send = self.activity_feed_inner.notify(method, params, opts)
        await _notify(self._conversation, self._origin(), method, params, send)


def recording_session(ctx: Any, conversation: Conversation, origin: Origin) -> Any:
    """A `ServerSession` for the handler of `ctx` whose sends to the client are recorded (and the
    connection's channel wrapped, once); None when that cannot be done."""
    try:
        from mcp.server.session import ServerSession

        from activity_feed.mcp.connections import sdk_connection, sdk_dispatch_context

        session = ctx.session
        connection = sdk_connection(session)
        dctx = sdk_dispatch_context(session)
        if connection is None or dctx is None:
            return None
        if not isinstance(connection.outbound, RecordingChannel):
            connection.outbound = RecordingChannel(
                connection.outbound, conversation, origin.state, connection
            )
        request_meta = ctx.meta if ctx.request_id is not None else None
        return ServerSession(
            RecordingDispatchContext(dctx, conversation, origin), connection, request_meta=request_meta
        )
    except Exception:  # boundary: the handler then gets the SDK's own session, unrecorded
        warn_once("session", "activity feed: could not record what the server sends the client")
        return None
