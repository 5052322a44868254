"""`since` on the statistics endpoints: an ISO 8601 time, or a duration back from now (`15m`, `24h`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import Example

from activity_feed.since import SINCE_DESCRIPTION, since_moment

SINCE_EXAMPLES = ["15m", "24h", "2026-12-01T09:00:00Z"]
# Named examples, which the API docs offer to try.
SINCE_OPENAPI_EXAMPLES: dict[str, Example] = {
    "duration": {"summary": "the last 15 minutes", "value": "15m"},
    "day": {"summary": "the last 24 hours", "value": "24h"},
    "time": {"summary": "from an ISO 8601 time on", "value": "2026-12-01T09:00:00Z"},
}
# The optional `since` of the reads that list events (recent, export, stats), documented once.
SinceQuery = Annotated[
    str | None,
    Query(
        description=f"only events with a timestamp from then on: {SINCE_DESCRIPTION}",
        examples=SINCE_EXAMPLES,
        openapi_examples=SINCE_OPENAPI_EXAMPLES,
    ),
]
__all__ = ["SINCE_DESCRIPTION", "SINCE_EXAMPLES", "SINCE_OPENAPI_EXAMPLES", "SinceQuery", "parse_since"]


def parse_since(text: str, *, now: datetime) -> datetime:
    """The moment `text` names, in UTC; 422 (`RequestValidationError`) saying what is accepted."""
    try:
        return since_moment(text, now=now)
    except ValueError as exc:
        # FastAPI's own 422 shape, as for any query parameter of the wrong type.
        error = {"type": "value_error", "loc": ("query", "since"), "msg": f"since: {exc}", "input": text}
        raise RequestValidationError([error]) from None
