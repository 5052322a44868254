"""One request and its response as the HTTP relay keeps them, and the tap it tells about them."""

from __future__ import annotations

from typing import Protocol

from activity_feed.proxy.headers import RawHeaders

# Of requests not recorded, this much is kept until their answer: the id for an error the relay answers
# itself.
MAX_ID_BODY = 64 * 1024


class Tap(Protocol):
    """What the relay tells the recorder about each exchange with the MCP endpoint; every call returns at
    once and never raises. `exchange` is the relay's own object, the same through an exchange's calls."""

    def request(self, exchange: Exchange, body: bytes) -> None: ...
    def response(self, exchange: Exchange, status: int, headers: RawHeaders) -> None: ...
    def chunk(self, exchange: Exchange, data: bytes) -> None: ...
    def end(self, exchange: Exchange, problem: str | None) -> None: ...


class Exchange:
    """One request and its response on a client connection."""

    __slots__ = (
        "body",
        "chunked_in",
        "chunked_out",
        "copy",
        "copy_limit",
        "copy_size",
        "http10",
        "keep_alive",
        "method",
        "out",
        "recorded",
        "refusal",
        "refused",
        "request_done",
        "response_done",
        "response_started",
        "sent",
        "session_id",
        "streaming",
        "wanted",
    )

    def __init__(self, method: str, session_id: bytes | None, keep_alive: bool, http10: bool) -> None:
        self.method = method
        self.session_id = session_id
        self.keep_alive = keep_alive
        self.http10 = http10
        self.chunked_in = False
        self.chunked_out = False
        self.out: list[bytes] = []  # what waits to go upstream (before the connection or its turn)
        self.sent = False
        # The body so far (references to the chunks relayed): to record it, or to find the id of a request
        # the relay has to answer itself.
        self.copy: list[bytes] | None = []
        self.copy_limit = MAX_ID_BODY
        self.copy_size = 0
        self.wanted = False  # an exchange with the MCP endpoint: recorded
        self.body: bytes | None = None
        self.recorded = False
        self.refused = False
        self.refusal: str | None = None  # why the relay answers 502, once the request has all come
        self.request_done = False
        self.response_started = False
        self.response_done = False
        self.streaming = False
