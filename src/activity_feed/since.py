"""`since` as people write it: an ISO 8601 time, or a duration back from now (`15m`, `24h`, or a bare
number of seconds, as every duration of the product). The API's `since` parameters and the commands
that question a feed read it alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError

from activity_feed.durations import parse_duration, shown

# A duration: a number with its unit, or a bare number, which is seconds as everywhere else in the
# product (`prune --older-than 90`, the duration settings), not a Unix time (pydantic's reading).
_DURATION = re.compile(r"\s*\d+(?:\.\d+)?\s*[smhd]?\s*", re.IGNORECASE)
_MOMENT = TypeAdapter(datetime)
SINCE_DESCRIPTION = (
    "an ISO 8601 time (without a zone: UTC), or a duration back from now: a number with s, m, h or d "
    "(`90s`, `15m`, `24h`, `7d`; a bare number is seconds)"
)


def since_moment(text: str, *, now: datetime) -> datetime:
    """The moment `text` names, in UTC; ValueError saying what is accepted."""
    if _DURATION.fullmatch(text):
        try:
            return now - parse_duration(text)
        except (ValueError, OverflowError):
            raise ValueError("too long a duration: it reaches back before the year 1") from None
    try:
        moment = _MOMENT.validate_python(text)
    except ValidationError:
        raise ValueError(f"not a time or a duration: {shown(text)!r} (use {SINCE_DESCRIPTION})") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None
