"""HTTP/1.1 as the relay writes it: request and response heads, chunks, and the few responses the
relay makes itself."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson

from activity_feed.proxy.headers import RawHeaders

# The JSON-RPC code of an error the proxy makes itself (the "server error" range the spec leaves to
# implementations).
PROXY_ERROR_CODE = -32000
# How such an error's message begins: it says the server never answered, whatever its code.
PROXY_ERROR_PREFIX = "activity-feed proxy: "
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def _header_lines(lines: list[bytes], headers: RawHeaders) -> None:
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")


def request_head(method: bytes, target: bytes, authority: bytes, headers: RawHeaders, chunked: bool) -> bytes:
    """The request line and headers for the upstream; `chunked`: the body follows in chunks."""
    lines = [method, b" ", target, b" HTTP/1.1\r\nhost: ", authority, b"\r\n"]
    _header_lines(lines, headers)
    lines.append(b"transfer-encoding: chunked\r\n\r\n" if chunked else b"\r\n")
    return b"".join(lines)


def response_head(status: int, reason: bytes, headers: RawHeaders, chunked: bool) -> bytes:
    """The status line (with the upstream's own reason phrase) and headers for the client."""
    if not reason:
        try:
            reason = HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b"Unknown"
    lines = [b"HTTP/1.1 ", str(status).encode(), b" ", reason, b"\r\n"]
    _header_lines(lines, headers)
    lines.append(b"transfer-encoding: chunked\r\n\r\n" if chunked else b"\r\n")
    return b"".join(lines)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def response(status: int, content_type: bytes, body: bytes, *, close: bool) -> bytes:
    """A whole response the relay makes itself."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    return response_head(status, b"", headers, chunked=False) + body


def plain(status: int, text: str) -> bytes:
    """A short text answer to a request the relay cannot pass on; the connection closes after it."""
    return response(status, b"text/plain; charset=utf-8", text.encode() + b"\n", close=True)


def bad_gateway(problem: str, request_id: Any, *, close: bool) -> bytes:
    """502 with a JSON-RPC error for the request's id (null when it has none): MCP clients show a
    JSON-RPC error's message to their user, where a bare 502 would read as "server error"."""
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": PROXY_ERROR_CODE, "message": f"{PROXY_ERROR_PREFIX}{problem}"},
        }
    )
    return response(502, b"application/json", body, close=close)


def request_id(body: bytes | None) -> Any:
    """The id of the JSON-RPC request in `body`, or None."""
    if not body:
        return None
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    found = message.get("id") if isinstance(message, dict) else None
    return found if isinstance(found, str | int) else None
