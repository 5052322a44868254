"""`since` on the statistics endpoints: an ISO 8601 time, or a duration back from now (`15m`, `24h`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import Example
from pydantic import TypeAdapter, ValidationError

from activity_feed.durations import parse_duration

# A number with its unit: a bare number stays what it always was here, a time (pydantic's reading).
_WITH_UNIT = re.compile(r"\s*\d+(?:\.\d+)?\s*[smhd]\s*", re.IGNORECASE)
_MOMENT = TypeAdapter(datetime)
SINCE_DESCRIPTION = (
    "an ISO 8601 time (without a zone: UTC), or a duration back from now: a number with s, m, h or d "
    "(`90s`, `15m`, `24h`, `7d`)"
)
SINCE_EXAMPLES = ["15m", "24h", "2026-12-01T09:00:00Z"]
# Named examples, which the API docs offer to try.
SINCE_OPENAPI_EXAMPLES: dict[str, Example] = {
    "duration": {"summary": "the last 15 minutes", "value": "15m"},
    "day": {"summary": "the last 24 hours", "value": "24h"},
    "time": {"summary": "from an ISO 8601 time on", "value": "2026-12-01T09:00:00Z"},
}


def _invalid(text: str, why: str) -> RequestValidationError:
    # FastAPI's own 422 shape, as for any query parameter of the wrong type.
    error = {"type": "value_error", "loc": ("query", "since"), "msg": f"since: {why}", "input": text}
    return RequestValidationError([error])


def parse_since(text: str, *, now: datetime) -> datetime:
    """The moment `text` names, in UTC; 422 (`RequestValidationError`) saying what is accepted."""
    if _WITH_UNIT.fullmatch(text):
        try:
            return now - parse_duration(text)
        except (ValueError, OverflowError):
            raise _invalid(text, "too long a duration: it reaches back before the year 1") from None
    try:
        moment = _MOMENT.validate_python(text)
    except ValidationError:
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        raise _invalid(text, f"not a time or a duration: {shown!r} (use {SINCE_DESCRIPTION})") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _invalid(text, "is out of range once converted to UTC") from None
