"""Exception handlers: every error the feed raises on purpose becomes a clear JSON answer, never a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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


def add_catch_all_handler(app: FastAPI) -> None:
    """A JSON 500 without a trace, for the service's own app (a user's app keeps its own)."""
    app.add_exception_handler(Exception, _unexpected)
