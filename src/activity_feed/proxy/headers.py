"""Which headers a reverse proxy passes on: every one but those that belong to a single connection.

RFC 9110 section 7.6.1: `Connection` and the headers it names, plus the ones that are hop-by-hop by
nature (`Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`); `Proxy-Authorization`
and `Proxy-Authenticate` are for the proxy itself. `Host` is the upstream's (the HTTP client sets it),
and `Expect` is dropped because the relay reads the whole body from its client before the upstream
could answer an interim response.
"""

from __future__ import annotations

from collections.abc import Iterable

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
_REQUEST_ONLY = frozenset({b"host", b"expect"})
SESSION_HEADER = b"mcp-session-id"


def _named_by_connection(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return frozenset(named)


def _end_to_end(headers: Iterable[tuple[bytes, bytes]], dropped: frozenset[bytes]) -> RawHeaders:
    headers = list(headers)
    if also := _named_by_connection(headers):
        dropped = dropped | also
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def request_headers(headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The client's headers to send upstream (ASGI gives them lowercased; order and repeats kept)."""
    return _end_to_end(headers, HOP_BY_HOP | _REQUEST_ONLY)


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The upstream's headers to send back to the client, as the upstream spelled them."""
    return _end_to_end(headers, HOP_BY_HOP)


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of `name` (lowercase) in `headers`, or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
