"""One client connection as the feed sees it: its `session_id`, its transport, and its requests in
flight (so that a `notifications/cancelled` can find the request it cancels).

The SDK builds its request context afresh for each message and (in mcp 2.3) gives middleware no handle
on the connection: the `Connection` and the message's dispatch context are held by the per-request
`ServerSession`, as `_connection` and `_request_outbound` (fastmcp reads `_connection` the same way).
They are only read here, never changed; should a later SDK rename them, events lose their session and
nothing else. A connection is then known by an object that lives exactly as long as it:

- a connection over JSON-RPC (stdio, in-process `mode="legacy"`, SSE, stateful streamable HTTP, and
  2026-era connections over a stream, for which the SDK builds a `Connection` per request): the
  dispatcher behind the message's dispatch context (`_dispatcher`);
- an in-process client on the 2026 path (`mcp.Client(server)`): the transport context its dispatcher
  pair shares.

Over HTTP the session is the transport's: `Mcp-Session-Id` when there is one, else none (a stateless
request is no connection).
"""

from __future__ import annotations

import threading
import uuid
import weakref
from typing import Any


class ConnectionState:
    """What the feed keeps about one connection while it lasts, or about one message that came on no
    connection."""

    __slots__ = ("cancellable", "in_flight", "server_requests", "session_id", "transport")

    def __init__(
        self,
        session_id: str | None,
        transport: str,
        *,
        cancellable: bool = True,
        server_requests: bool = False,
    ) -> None:
        self.session_id = session_id
        self.transport = transport
        # Whether the client can cancel a request with a notification: then its requests in flight are
        # kept by id (an in-process client on the 2026 path cancels by stopping its own call instead).
        self.cancellable = cancellable
        # Whether the server may send the client requests on this connection: only handshake-era ones
        # carry them (a 2026-era connection, or an in-process one on the 2026 path, refuses them).
        self.server_requests = server_requests
        self.in_flight: dict[object, Any] = {}  # the requests' calls, by request id (see request_key)


def request_key(request_id: object) -> object:
    """A request id as the SDK correlates it: `"7"` and `7` are one request."""
    if type(request_id) is str:
        try:
            return int(request_id)
        except ValueError:
            pass
    return request_id


class _Registry:
    """Connection states by the identity of the object that lives as long as the connection."""

    def __init__(self) -> None:
        self.states: dict[int, tuple[weakref.ref[Any], ConnectionState]] = {}
        self._lock = threading.Lock()

    def add(self, key: object, state: ConnectionState) -> ConnectionState:
        with self._lock:
            entry = self.states.get(id(key))
            if entry is not None and entry[0]() is key:
                return entry[1]
            ident = id(key)

            def forget(ref: weakref.ref[Any]) -> None:
                with self._lock:
                    entry = self.states.get(ident)
                    if entry is not None and entry[0] is ref:
                        del self.states[ident]

            self.states[ident] = (weakref.ref(key, forget), state)
            return state

    def __len__(self) -> int:
        return len(self.states)


CONNECTIONS = _Registry()
_states = CONNECTIONS.states


def new_session_id() -> str:
    return str(uuid.uuid4())


def sdk_connection(session: Any) -> Any:
    """The SDK's `Connection` behind a request's `ServerSession` (None when unknown)."""
    return getattr(session, "_connection", None)


def sdk_dispatch_context(session: Any) -> Any:
    """The dispatch context of a request's `ServerSession` (None when unknown)."""
    return getattr(session, "_request_outbound", None)


def connection_state(session: Any, http_request: Any) -> ConnectionState:
    """The state of the connection a message arrived on (made on first sight). This runs inside every
    request: the common case is a few attribute reads and one dict lookup."""
    try:
        dctx: Any = getattr(session, "_request_outbound", None)
        inner: Any = getattr(dctx, "_inner", dctx)  # a 2026-era request's context wraps the dispatcher's
        key = inner.transport
        direct = key.kind == "direct"
        if not direct:  # the transport context is the message's own: the dispatcher is the connection's
            key = getattr(inner, "_dispatcher", None)
            if key is None:
                return _stateless(http_request)
        entry = _states.get(id(key))
        if entry is not None and entry[0]() is key:
            return entry[1]
        return CONNECTIONS.add(key, _new_state(getattr(session, "_connection", None), http_request, direct))
    except Exception:  # boundary: an SDK that changed shape costs the events their session only
        return _stateless(http_request)


def _new_state(connection: Any, http_request: Any, direct: bool) -> ConnectionState:
    if direct:
        return ConnectionState(new_session_id(), "inproc", cancellable=False)
    # A handshake-era connection starts at a handshake version, until `initialize` settles it; a
    # 2026-era one is made at its version.
    handshake = connection is not None and connection.protocol_version not in _modern_versions()
    if http_request is not None:
        session_id = getattr(connection, "session_id", None) or _header_session(http_request)
        return ConnectionState(session_id, "http", server_requests=handshake)
    transport = "stdio" if _stdio_is_served() else "inproc"
    return ConnectionState(new_session_id(), transport, server_requests=handshake)


def _modern_versions() -> tuple[str, ...]:
    try:
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS
    except ImportError:
        return ("2026-07-28",)
    return tuple(MODERN_PROTOCOL_VERSIONS)


def _stdio_is_served() -> bool:
    """Whether this process serves stdio (the SDK's `stdio_server()` claims fds 0 and 1 while it runs);
    otherwise a stream connection without HTTP is an in-process client."""
    try:
        from mcp.server import stdio
    except ImportError:
        return True
    claims = getattr(stdio, "_claims", None)
    return bool(claims) if isinstance(claims, dict) else True


def _stateless(http_request: Any) -> ConnectionState:
    if http_request is not None:
        return ConnectionState(_header_session(http_request), "http", cancellable=False)
    return ConnectionState(None, "stdio", cancellable=False)


def _header_session(http_request: Any) -> str | None:
    headers = getattr(http_request, "headers", None)
    value = headers.get("mcp-session-id") if headers is not None else None
    return value if isinstance(value, str) and value else None
