"""An OTLP request's body, read within the size limit and inflated within it too (`Content-Encoding`).

The limit holds on the wire and once inflated: a small gzip body can inflate to gigabytes, so inflating
stops one byte past the limit, whatever the body would make."""

from __future__ import annotations

import zlib

from starlette.types import Receive

from activity_feed.errors import ActivityFeedError

# zlib's window bits: gzip's header and trailer; zlib's (what HTTP calls `deflate`).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ENCODINGS = frozenset({"", "identity", *_WBITS})


class BodyTooLarge(ActivityFeedError):
    """A body over the limit, as sent or once inflated."""


class BadEncoding(ActivityFeedError):
    """A body that its `Content-Encoding` cannot inflate."""


class ClientGone(ActivityFeedError):
    """The client went away before sending its whole body."""


async def read_body(receive: Receive, *, max_bytes: int) -> bytes:
    """The request's body, raising `BodyTooLarge` as soon as more than `max_bytes` arrived."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("the client disconnected")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"the body is over {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def inflate(body: bytes, encoding: str, *, max_bytes: int) -> bytes:
    """`body` decoded as `encoding` says (one of `ENCODINGS`), at most `max_bytes` of it."""
    wbits = _WBITS.get(encoding)
    if wbits is None:
        return body
    output: list[bytes] = []
    size = 0
    remaining = body
    # A gzip body may hold several members one after the other; each is inflated in turn.
    while remaining:
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(remaining, max_bytes - size + 1)
        except zlib.error as exc:
            raise BadEncoding(f"the body is not valid {encoding} data: {exc}") from None
        size += len(chunk)
        if size > max_bytes or inflater.unconsumed_tail:
            raise BodyTooLarge(f"the body inflates to more than {max_bytes} bytes")
        if not inflater.eof:
            raise BadEncoding(f"the {encoding} data ends before its end (truncated)")
        output.append(chunk)
        remaining = inflater.unused_data if wbits != zlib.MAX_WBITS else b""
    return b"".join(output)
