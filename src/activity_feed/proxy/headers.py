"""Which headers a reverse proxy passes on: every one but those that belong to a single connection.

RFC 9110 section 7.6.1: `Connection` and the headers it names, plus the ones that are hop-by-hop by
nature (`Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`); `Proxy-Authorization`
and `Proxy-Authenticate` are for the proxy itself. `Host` is the upstream's (the relay writes it), and
`Expect` is answered by the relay itself.
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
NOT_FROM_CLIENTS = HOP_BY_HOP | {b"host", b"expect"}
_READ = frozenset({b"content-length", b"transfer-encoding", b"connection", b"mcp-session-id", b"expect"})


class Head:
    """One message's headers as a parser reads them, one at a time: those passed on (as they were spelt,
    in order, repeats kept) and the few the relay reads itself."""

    __slots__ = ("chunked", "dropped", "expect", "length", "named", "passed", "session", "size")

    def __init__(self, dropped: frozenset[bytes]) -> None:
        self.dropped = dropped
        self.passed: RawHeaders = []
        self.named: set[bytes] | None = None  # what `Connection` names
        self.length: bytes | None = None
        self.chunked = False  # a transfer coding: the parser takes the body out of its chunks
        self.session: bytes | None = None
        self.expect: bytes | None = None
        self.size = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.size += len(name) + len(value) + 4
        low = name.lower()
        if low in _READ:
            if low == b"content-length":
                self.length = value
            elif low == b"transfer-encoding":
                self.chunked = True
            elif low == b"connection":
                named = self.named if self.named is not None else set()
                named.update(token.strip().lower() for token in value.split(b","))
                self.named = named
            elif low == b"mcp-session-id":
                if self.session is None:
                    self.session = value
            else:
                self.expect = value
        if low not in self.dropped:
            self.passed.append((name, value))

    def end_to_end(self) -> RawHeaders:
        """The headers to pass on."""
        named = self.named
        if not named:
            return self.passed
        return [(name, value) for name, value in self.passed if name.lower() not in named]

    def content_length(self) -> int | None:
        value = self.length
        if value is None:
            return None
        value = value.strip()
        return int(value) if value.isdigit() else None


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of `name` (lowercase) in `headers`, or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
