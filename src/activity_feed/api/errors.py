"""Exception handlers: every error the feed raises on purpose becomes a clear JSON answer, never a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import JSONResponse

from activity_feed.api.auth import reject_websocket
from activity_feed.errors import DataTooLargeError, ReferenceNotFoundError, StoreUnavailableError

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 1


async def store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{exc}; retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _data_too_large(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=413)


async def _reference_not_found(_request: Request, exc: Exception) -> JSONResponse:
    # In the shape of FastAPI's own 422 (`HTTPValidationError`), which is what the OpenAPI schema declares.
    location = exc.location if isinstance(exc, ReferenceNotFoundError) else ()
    value = exc.value if isinstance(exc, ReferenceNotFoundError) else None
    error = {"type": "reference_not_found", "loc": list(location), "msg": str(exc), "input": value}
    return JSONResponse({"detail": [error]}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The trace goes to the log for the operator, never to the client.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def add_feed_error_handlers(app: FastAPI) -> None:
    """Handlers for the feed's own errors; safe to add to a user's app."""
    app.add_exception_handler(StoreUnavailableError, store_unavailable)
    app.add_exception_handler(ReferenceNotFoundError, _reference_not_found)
    app.add_exception_handler(DataTooLargeError, _data_too_large)


async def _stream_query_invalid(websocket: WebSocket, exc: Exception) -> None:
    """A stream URL with a filter the feed does not know (`?status=bogus`): answered 422 with what is
    wrong, as the REST API does, rather than FastAPI's close before the handshake, which a client sees as
    a bare 403 (or, where the server cannot answer a handshake with HTTP, closed with that reason)."""
    errors = exc.errors() if isinstance(exc, WebSocketRequestValidationError) else []
    detail = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'][1:]) or 'query'}: {error['msg']}" for error in errors
    )
    # A close frame's reason holds at most 123 bytes.
    await reject_websocket(websocket.scope, websocket.send, 422, detail[:120] or "invalid query", {})


def add_catch_all_handler(app: FastAPI) -> None:
    """For the service's own app (a user's app keeps its own): a JSON 500 without a trace, and a 422 for a
    stream URL with bad filters."""
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(WebSocketRequestValidationError, _stream_query_invalid)
