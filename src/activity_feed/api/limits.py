"""Request limits: the body, enforced while the body streams in (chunked bodies count too), answered in JSON.

FastAPI's own `max_body_size` answers a too-large Content-Length in plain text and a too-large chunked
body in JSON; clients of the feed get one JSON shape whichever way they sent the body. And each event's
`data`, checked once parsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _BodyTooLarge(HTTPException):
    # An HTTPException, so that FastAPI's body parsing lets it through to the JSON 413 handler instead of
    # turning it into "There was an error parsing the body".
    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=_detail(max_bytes))


def _detail(max_bytes: int) -> str:
    return f"request body is larger than {max_bytes} bytes"


class BodySizeLimitMiddleware:
    """Answer 413 to any request under `path_prefix` whose body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, path_prefix: str = "") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(scope, receive, send)
                return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def observed_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, observed_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"detail": _detail(self.max_bytes)}, status_code=413)(scope, receive, send)


def check_data_size(data: Mapping[str, Any] | None, *, max_bytes: int, where: str = "data") -> None:
    """Raise a 413 when `data`, serialised as the store keeps it, is over `max_bytes`.

    Measured after parsing rather than on the wire, so escapes and whitespace in the request do not count
    and the limit means the same for every client."""
    if not data:
        return
    size = len(orjson.dumps(data))
    if size > max_bytes:
        raise HTTPException(
            status_code=413,
            detail=f"{where} is {size} bytes serialised, over the limit of {max_bytes} bytes per event",
        )


def check_batch_data_sizes(
    creates: Sequence[Mapping[str, Any] | None],
    updates: Sequence[Mapping[str, Any] | None],
    *,
    max_bytes: int,
) -> None:
    """`check_data_size` for every item; the first item over the limit refuses the whole batch, by index.

    The item's place is written out only for the one refused: for each of a batch's 1,000 items, it
    cost more than measuring them."""
    for part, items in (("events", creates), ("updates", updates)):
        for index, data in enumerate(items):
            if data and len(orjson.dumps(data)) > max_bytes:
                check_data_size(data, max_bytes=max_bytes, where=f"{part}[{index}].data")
