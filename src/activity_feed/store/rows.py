"""The event's columns, listed once, and the public event built from a row, kept cheap: it sits on the
ingest and replay paths."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from activity_feed.schemas import (
    ActivityCreate,
    ActivityPublic,
    Change,
    ChangeType,
    EventStatus,
    EventType,
    Fields,
)

# The public event's fields, in the table's order. Every other list of columns derives from this one.
PUBLIC_COLUMNS = (
    "id",
    "timestamp",
    "tool_name",
    "user_source",
    "event_type",
    "status",
    "data",
    "duration_ms",
    "error_message",
    "correlation_id",
    "session_id",
)
# The table's columns, in order: the insertion number, the event, and what the writer keeps for resuming.
ROW_COLUMNS = ("seq", *PUBLIC_COLUMNS, "updated_at", "change_seq")
# What an update may change, and what the writer sets with it.
UPDATED_COLUMNS = ("status", "duration_ms", "error_message", "data", "updated_at", "change_seq")

# A dict lookup instead of calling the enum, which costs several times more; the enums are str
# subclasses, so a member looks itself up too.
_EVENT_TYPES: dict[str, EventType] = {member.value: member for member in EventType}
_STATUSES: dict[str, EventStatus] = {member.value: member for member in EventStatus}
_ALL_FIELDS = frozenset(PUBLIC_COLUMNS)
_new_public = ActivityPublic.__new__
_set = object.__setattr__


def to_public(row: Mapping[Any, Any]) -> ActivityPublic:
    """Build the public event from a row (or a row-shaped dict) without validating it again.

    What `ActivityPublic.model_construct` does for a model with every field given, minus its per-field
    search for aliases and defaults, which cost more than the rest of a create on the batch path.
    tests/store/test_rows.py holds the result equal to a validated model, field set included."""
    fields = {name: row[name] for name in PUBLIC_COLUMNS}
    fields["event_type"] = _EVENT_TYPES[fields["event_type"]]
    fields["status"] = _STATUSES[fields["status"]]
    return _public(fields)


def new_public(event: ActivityCreate, event_id: uuid.UUID, timestamp: datetime) -> ActivityPublic:
    """The public form of `event`, created with `event_id` at `timestamp` (as `to_public` builds it)."""
    fields = {name: getattr(event, name) for name in PUBLIC_COLUMNS[2:]}
    return _public({"id": event_id, "timestamp": timestamp, **fields})


def new_row(event: ActivityCreate, event_id: uuid.UUID, *, seq: int, now: datetime) -> dict[str, Any]:
    """The whole row of a new event as SQLAlchemy takes it, numbered `seq` at its transaction's `now`."""
    row = {name: getattr(event, name) for name in PUBLIC_COLUMNS[2:]}
    row["event_type"] = row["event_type"].value
    row["status"] = row["status"].value
    return {
        "seq": seq,
        "id": event_id,
        "timestamp": event.timestamp or now,
        **row,
        "updated_at": now,
        "change_seq": seq,
    }


def _public(fields: dict[str, Any]) -> ActivityPublic:
    event = _new_public(ActivityPublic)
    _set(event, "__dict__", fields)
    _set(event, "__pydantic_fields_set__", set(_ALL_FIELDS))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


class CreatedChange(Change):
    """The change that created an event, whose public form (`event`) is made on first use: a batch's
    creates are mostly only counted, and making each public event inside the transaction, on the
    writer's thread (the batch path's bottleneck), would cost it noticeably (`bench batch`)."""

    __slots__ = ("_id", "_item", "_public", "_timestamp")

    def __init__(self, seq: int, item: ActivityCreate, event_id: uuid.UUID, timestamp: datetime) -> None:
        self.seq = seq
        self.type = ChangeType.LOGGED
        self._item = item
        self._id = event_id
        self._timestamp = timestamp
        self._public: ActivityPublic | None = None

    @property
    def event(self) -> ActivityPublic:
        public = self._public
        if public is None:
            public = self._public = new_public(self._item, self._id, self._timestamp)
        return public

    def field(self, name: str) -> Any:
        # The public event holds the item's own values but for these two, which the store chose.
        if name == "id":
            return self._id
        if name == "timestamp":
            return self._timestamp
        return getattr(self._item, name)

    def fields(self, fields: Fields) -> tuple[Any, ...]:
        values: tuple[Any, ...] = fields.of(self._item if fields.from_request else self.event)
        return values
