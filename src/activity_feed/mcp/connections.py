"""One client connection as the feed sees it: its `session_id`, its transport, and its requests in
flight (so that a `notifications/cancelled` can find the request it cancels).

The SDK builds its request context afresh for each message and (in mcp 2.3) gives middleware no handle
on the connection: the `Connection` and the message's dispatch context are held by the per-request
`ServerSession`, as `_connection` and `_request_outbound` (fastmcp reads `_connection` the same way).
They are only read here, never changed; should a later SDK rename them, events lose their session and
nothing else. A connection is then known by an object that lives exactly as long as it:

- a handshake-era connection (stdio, in-process `mode="legacy"`, SSE, stateful streamable HTTP): its
  `Connection`'s standalone channel, the JSON-RPC dispatcher;
- a 2026-era connection over a stream (stdio): the SDK builds a `Connection` per request, all sharing
  the connection's notification channel;
- an in-process client on the 2026 path (`mcp.Client(server)`): the transport context its dispatcher
  pair shares.

Over HTTP the session is the transport's: `Mcp-Session-Id` when there is one, else none (a stateless
request is no connection).
"""

from __future__ import annotations

import threading
import uuid
import weakref
from typing import Any, NamedTuple


class ConnectionState:
    """What the feed keeps about one connection while it lasts."""

    __slots__ = ("in_flight", "session_id", "transport")

    def __init__(self, session_id: str | None, transport: str) -> None:
        self.session_id = session_id
        self.transport = transport
        self.in_flight: dict[object, Any] = {}  # the requests' calls, by request id (see request_key)


class Peer(NamedTuple):
    """The connection a message came on: its state (None when it is no connection) and transport."""

    state: ConnectionState | None
    session_id: str | None
    transport: str


def request_key(request_id: object) -> object:
    """A request id as the SDK correlates it: `"7"` and `7` are one request."""
    if isinstance(request_id, str):
        try:
            return int(request_id)
        except ValueError:
            pass
    return request_id


class _Registry:
    """Connection states by the identity of the object that lives as long as the connection."""

    def __init__(self) -> None:
        self._states: dict[int, tuple[weakref.ref[Any], ConnectionState]] = {}
        self._lock = threading.Lock()

    def get(self, key: object) -> ConnectionState | None:
        entry = self._states.get(id(key))
        if entry is not None and entry[0]() is key:
            return entry[1]
        return None

    def add(self, key: object, state: ConnectionState) -> ConnectionState:
        with self._lock:
            known = self.get(key)
            if known is not None:
                return known
            ident = id(key)

            def forget(ref: weakref.ref[Any]) -> None:
                with self._lock:
                    entry = self._states.get(ident)
                    if entry is not None and entry[0] is ref:
                        del self._states[ident]

            self._states[ident] = (weakref.ref(key, forget), state)
            return state

    def __len__(self) -> int:
        return len(self._states)


CONNECTIONS = _Registry()


def new_session_id() -> str:
    return str(uuid.uuid4())


def sdk_connection(session: Any) -> Any:
    """The SDK's `Connection` behind a request's `ServerSession` (None when unknown)."""
    return getattr(session, "_connection", None)


def sdk_dispatch_context(session: Any) -> Any:
    """The dispatch context of a request's `ServerSession` (None when unknown)."""
    return getattr(session, "_request_outbound", None)


def _stdio_is_served() -> bool:
    """Whether this process serves stdio (the SDK's `stdio_server()` claims fds 0 and 1 while it runs);
    otherwise a stream connection without HTTP is an in-process client."""
    try:
        from mcp.server import stdio
    except ImportError:
        return True
    claims = getattr(stdio, "_claims", None)
    return bool(claims) if isinstance(claims, dict) else True


def peer_of(session: Any, http_request: Any) -> Peer:
    """The connection a request or notification arrived on (its state made on first sight)."""
    try:
        connection = sdk_connection(session)
        if connection is None:
            return _stateless(http_request)
        outbound = connection.outbound
        inner = getattr(outbound, "activity_feed_inner", None)  # our recording wrapper (outbound.py)
        if inner is not None:
            outbound = inner
        if connection.has_standalone_channel:
            key: object = outbound
            transport = None
        else:
            dctx = sdk_dispatch_context(session)
            context = getattr(getattr(dctx, "_inner", dctx), "transport", None)
            if context is None or getattr(context, "kind", None) != "direct":
                return _stateless(http_request)
            key, transport = context, "inproc"
        state = CONNECTIONS.get(key)
        if state is None:
            state = CONNECTIONS.add(key, _new_state(connection, http_request, transport))
        return Peer(state, state.session_id, state.transport)
    except Exception:  # boundary: an SDK that changed shape costs the events their session only
        return _stateless(http_request)


def _new_state(connection: Any, http_request: Any, transport: str | None) -> ConnectionState:
    if http_request is not None:
        session_id = connection.session_id or _header_session(http_request)
        return ConnectionState(session_id, "http")
    if transport is None:
        transport = "stdio" if _stdio_is_served() else "inproc"
    return ConnectionState(new_session_id(), transport)


def _stateless(http_request: Any) -> Peer:
    if http_request is not None:
        return Peer(None, _header_session(http_request), "http")
    return Peer(None, None, "stdio")


def _header_session(http_request: Any) -> str | None:
    headers = getattr(http_request, "headers", None)
    value = headers.get("mcp-session-id") if headers is not None else None
    return value if isinstance(value, str) and value else None
