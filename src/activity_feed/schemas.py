"""The event as every layer sees it: enums, create/update/public shapes and the change notices.

These are the wire shapes of docs/api.md. They live below every other module so that the
store, the hub, the API and the client all speak the same types.
"""

from __future__ import annotations

import math
import operator
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_TEXT = 200
MAX_ERROR_MESSAGE = 10_000
MAX_CORRELATION_ID = 200
MAX_SESSION_ID = 200
MAX_BATCH_ITEMS = 1_000


class EventType(StrEnum):
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    VOICE_COMMAND = "voice_command"
    SYSTEM_EVENT = "system_event"
    API_REQUEST = "api_request"
    MCP_REQUEST = "mcp_request"
    MCP_NOTIFICATION = "mcp_notification"


class EventStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    ERROR = "error"


class ChangeType(StrEnum):
    """The `type` of a stream message."""

    LOGGED = "activity_logged"
    COMPLETED = "tool_completed"
    FAILED = "tool_failed"
    UPDATED = "activity_updated"
    DELETED = "activity_deleted"


# `member.value` goes through the enum's descriptor machinery, several times slower than a dict lookup;
# the per-event paths (the writer, the hub) read the plain strings from here. No two enums share a value.
ENUM_TEXT: dict[str, str] = {
    member: member.value for enum in (EventType, EventStatus, ChangeType) for member in enum
}


def _as_utc(value: datetime) -> datetime:
    # A timestamp without a zone is taken as UTC: that is what every client of the original app sent.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first moment a datetime can hold
        raise ValueError("is out of range once converted to UTC") from None


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it here keeps both databases answering alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# An escaped NUL in JSON text: \u0000 after an even number of backslashes (so not a literal "\\u0000").
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _json_without_nul(value: dict[str, Any]) -> dict[str, Any]:
    # PostgreSQL's JSONB cannot hold NUL either; orjson escapes it, so one search of the encoding finds
    # it in any key or value at any depth.
    try:
        encoded = orjson.dumps(value)
    except TypeError as exc:  # an integer beyond 64 bits, which the store's JSON encoder refuses too
        raise ValueError(f"cannot be stored: {exc}") from None
    # The substring test is a fast scan that almost every value passes; the pattern then tells an escaped
    # NUL from a literal backslash followed by "u0000".
    if b"\\u0000" in encoded and _ESCAPED_NUL.search(encoded):
        raise ValueError("must not contain NUL characters (\\u0000) in any key or string")
    # orjson writes NaN and the infinities as null, which would store a different value than was sent; so
    # only an encoding with a null in it can hide one, and only then is the object walked.
    if b"null" in encoded and (where := _non_finite_number(value, "data")) is not None:
        raise ValueError(f"must hold JSON numbers only: {where} is not a finite number (NaN or Infinity)")
    return value


def _non_finite_number(value: object, path: str) -> str | None:
    """Where in `value`, found at `path`, the first NaN or infinity is (`path.key[2]`), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite_number(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}")
        if found is not None:
            return found
    return None


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_json_without_nul)]
ShortText = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_no_nul)]
ErrorText = Annotated[str, Field(max_length=MAX_ERROR_MESSAGE), AfterValidator(_no_nul)]
CorrelationId = Annotated[str, Field(max_length=MAX_CORRELATION_ID), AfterValidator(_no_nul)]
SessionId = Annotated[str, Field(max_length=MAX_SESSION_ID), AfterValidator(_no_nul)]
Duration = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActivityCreate(_Strict):
    """What a client sends to create an event; everything but `event_type` has a default."""

    id: uuid.UUID | None = None
    timestamp: UtcDatetime | None = Field(
        default=None,
        description="when it happened (a time without a zone is UTC; absent: the server's time); a time more "
        "than ACTIVITY_FEED_MAX_CLOCK_SKEW (5 minutes by default) ahead of the server's clock is refused",
    )
    tool_name: ShortText | None = None
    user_source: ShortText | None = None
    event_type: EventType
    status: EventStatus = EventStatus.PENDING
    data: JsonObject = Field(default_factory=dict)
    duration_ms: Duration | None = None
    error_message: ErrorText | None = None
    correlation_id: CorrelationId | None = None
    session_id: SessionId | None = Field(
        default=None,
        description="the MCP connection or conversation the event belongs to; set on create only",
        examples=["3f1c9a7e-mcp-session"],
    )


class ActivityUpdate(_Strict):
    """The fields `PATCH` may change; `data` is merged into the stored object, key by key.
    A field that is absent or null is left as it is."""

    status: EventStatus | None = None
    duration_ms: Duration | None = None
    error_message: ErrorText | None = None
    data: JsonObject | None = None


class ActivityUpdateItem(ActivityUpdate):
    """One update inside a batch: the same fields plus the event's id."""

    id: uuid.UUID


class ActivityPublic(BaseModel):
    """An event as every endpoint and stream message shows it."""

    id: uuid.UUID
    timestamp: datetime
    tool_name: str | None
    user_source: str | None
    event_type: EventType
    status: EventStatus
    data: dict[str, Any]
    duration_ms: float | None
    error_message: str | None
    correlation_id: str | None
    session_id: str | None


class DeletedEvent(BaseModel):
    """What a deletion notice carries when the store no longer has the event's last state."""

    id: uuid.UUID


class BatchRequest(_Strict):
    """Creates, then updates; at most 1,000 items in all."""

    events: list[ActivityCreate] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)
    updates: list[ActivityUpdateItem] = Field(default_factory=list, max_length=MAX_BATCH_ITEMS)

    @model_validator(mode="after")
    def _at_most_max_items(self) -> BatchRequest:
        total = len(self.events) + len(self.updates)
        if total > MAX_BATCH_ITEMS:
            raise ValueError(f"a batch holds at most {MAX_BATCH_ITEMS} items (events + updates), got {total}")
        return self


class BatchResult(BaseModel):
    created: int = 0
    existing: int = 0
    updated: int = 0
    missing: int = 0
    too_large: int = Field(
        default=0,
        description="updates not applied, because merging their `data` would take the event over the size "
        "limit; present only when not 0",
    )


class ToolStats(BaseModel):
    tool_name: str | None
    count: int
    errors: int
    error_rate: float
    p50_duration_ms: float | None
    p95_duration_ms: float | None


class TimelineBucket(BaseModel):
    """One time bucket of `GET /activities/stats/timeline`: its events, failed ones, and the nearest-rank
    p50/p95 of their `duration_ms` (null when none has one)."""

    start: datetime
    calls: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None


class StatsTimeline(BaseModel):
    """Every bucket from `since` to `until`, oldest first, empty ones included."""

    since: datetime = Field(
        description="the first bucket's start: the requested time, or, when `truncated`, the oldest event "
        "counted (every event from then on was)"
    )
    until: datetime
    bucket_seconds: int
    truncated: bool = Field(description="older events of the window were left out (stats_window_events)")
    events: int
    buckets: list[TimelineBucket]


class SessionPublic(BaseModel):
    """One session as `GET /activities/sessions` lists it: its first and latest event's timestamps,
    who and which server (the latest named), and how many of its events there are, failed and pending."""

    session_id: str
    user_source: str | None
    server: str | None = Field(description="`data.mcp.server.name` of the session's events, if any")
    first_seen: datetime
    last_seen: datetime
    events: int
    errors: int
    pending: int


class StreamMessage(BaseModel):
    """One WebSocket message; `cursor` is opaque to clients."""

    type: ChangeType | Literal["resync"]
    event: ActivityPublic | DeletedEvent | None = None
    cursor: str | None = None


class Fields:
    """The same few fields (two or more) read from many events by C-level getters: from a model (`of`)
    or from an event's JSON object (`of_json`). For readers of every change (hub observers)."""

    __slots__ = ("from_request", "names", "of", "of_json")

    def __init__(self, *names: str) -> None:
        if len(names) < 2:
            raise ValueError("Fields reads two fields or more: read one with Change.field")
        self.names = names
        self.of = operator.attrgetter(*names)
        self.of_json = operator.itemgetter(*names)
        # A create request holds every field of the stored event but the two the store chooses.
        self.from_request = not {"id", "timestamp"} & set(names)


class Change:
    """A committed change to one event, numbered in commit order by the store's change counter; `event`
    is the event as the change left it (store/rows.py's `CreatedChange` makes it on first use)."""

    __slots__ = ("_event", "seq", "type")

    def __init__(self, *, seq: int, type: ChangeType, event: ActivityPublic | DeletedEvent) -> None:
        self.seq = seq
        self.type = type
        self._event = event

    @property
    def event(self) -> ActivityPublic | DeletedEvent:
        return self._event

    def field(self, name: str) -> Any:
        """One field of `event`, for readers of a few fields of every change (store/rows.py's
        `CreatedChange` answers without making the whole event)."""
        return getattr(self.event, name)

    def fields(self, fields: Fields) -> tuple[Any, ...]:
        """`fields` of `event`, in their order (as `field`, several at once)."""
        values: tuple[Any, ...] = fields.of(self.event)
        return values

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seq={self.seq}, type={self.type.value})"
