"""The answers every feed endpoint may give besides its own, as the OpenAPI schema declares them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    """The body of every error the feed answers on purpose, other than a validation error (422)."""

    detail: str


class HealthUnavailable(BaseModel):
    status: str
    database: str
    # Present when the database answers but does not take writes: `failing: <why>`.
    writes: str | None = None
    bus: str
    stream_clients: int | None = None


# Only when a token is configured (ACTIVITY_FEED_TOKEN): the answers of api/auth.py, before any route runs.
UNAUTHORISED: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorDetail,
        "description": "No token, or a wrong one (only when the service has a token)",
        "headers": {"WWW-Authenticate": {"description": "`Bearer realm=...`", "schema": {"type": "string"}}},
    }
}
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorDetail, "description": "The read token cannot write: send the write token"}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "No event with this id"}
}
# Only without a token: a request addressed to a host the feed does not answer to (api/host_check.py).
MISDIRECTED: dict[int | str, dict[str, Any]] = {
    421: {"model": ErrorDetail, "description": "Not a loopback or allowed host (only when there is no token)"}
}
# Every endpoint that takes a body (api/content_type.py).
UNSUPPORTED_TYPE: dict[int | str, dict[str, Any]] = {
    415: {"model": ErrorDetail, "description": "The body is not declared `Content-Type: application/json`"}
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorDetail, "description": "Body or `data` too large"}
}
# Any request under /activities may lack its token (api/auth.py) or be too large (api/limits.py), and any
# endpoint that reads or writes the database answers 503 while it does not answer (api/errors.py).
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorDetail,
        "description": "The database does not answer: retry later",
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    }
}
