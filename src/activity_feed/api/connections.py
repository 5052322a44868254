"""Connections the service does not hold forever, and descriptors enough for them.

uvicorn closes a kept-alive connection left idle `timeout_keep_alive` seconds after a response, but
sets no timer before a request's headers are complete: a connection that sends nothing, or half a
request line, is held for as long as its client likes, and each holds a file descriptor. A few
hundred of them (one careless or hostile client is enough) used up the process's descriptors, and
then /health and writes failed. uvicorn has no option for this, hence the protocol subclass below.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# When the hard limit is unlimited: far more descriptors than `max_connections` needs, and within what
# systems that cap the soft limit separately (macOS) allow.
_UNLIMITED_TARGET = 10_240
# Descriptors the service needs besides its connections: the database, the listening socket, logs.
_DESCRIPTOR_RESERVE = 64


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers are not complete
    `header_timeout` seconds after it opened, or after the first bytes of a later request arrived.

    A timer per connection, cancelled when the first request's headers are complete; on a kept-alive
    connection a new one only when a chunk leaves a request's headers incomplete. The request path
    itself gains one attribute check per chunk received. WebSocket connections are handed to their
    own protocol at the upgrade, and this timer then leaves them alone."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout, self._close_if_still_waiting
        )

    def data_received(self, data: bytes) -> None:
        HttpToolsProtocol.data_received(self, data)  # not super(), which costs more, on every chunk
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # no request under way: its headers are incomplete
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(self.header_timeout, self._close_if_still_waiting)
        elif self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _close_if_still_waiting(self) -> None:
        self._header_timer = None
        cycle = self.cycle
        waiting = cycle is None or cycle.response_complete
        if waiting and self.transport.get_protocol() is self and not self.transport.is_closing():
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """`HeaderTimeoutProtocol` with its timeout set, for `uvicorn.Config(http=...)`, which takes a class
    and builds one protocol per connection itself."""
    attributes: dict[str, Any] = {"header_timeout": seconds}
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), attributes)


def raise_open_file_limit(max_connections: int) -> str | None:
    """Raise this process's soft limit on open files to its hard limit (each connection holds one; the
    usual soft default of 1,024, or less, would refuse connections well below `max_connections`).

    Returns a line saying what is wrong when the limit could not be raised, or stays below what
    `max_connections` needs; None otherwise."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows): nothing to raise
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, _UNLIMITED_TARGET)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            return f"could not raise the open-file limit from {soft} to {target} ({exc}); {_advice(soft)}"
    needed = max_connections + _DESCRIPTOR_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        return f"the open-file limit is {soft}, below the {needed} max_connections needs; {_advice(soft)}"
    return None


def _advice(soft: int) -> str:
    return (
        f"connections beyond about {max(0, soft - _DESCRIPTOR_RESERVE)} will be refused "
        "(raise it with `ulimit -n`, or lower ACTIVITY_FEED_MAX_CONNECTIONS)"
    )
