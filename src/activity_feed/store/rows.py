"""Conversions between table rows, the public event shape and SQLite's stored values, kept cheap: they
sit on the ingest path."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from activity_feed.ids import uuid7
from activity_feed.schemas import ENUM_TEXT, ActivityCreate, ActivityPublic, EventStatus, EventType
from activity_feed.store.engine import json_dumps
from activity_feed.store.schema import activity_events

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
)

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
    return _public(
        {
            "id": row["id"],
            "timestamp": row["timestamp"],
            "tool_name": row["tool_name"],
            "user_source": row["user_source"],
            "event_type": _EVENT_TYPES[row["event_type"]],
            "status": _STATUSES[row["status"]],
            "data": row["data"],
            "duration_ms": row["duration_ms"],
            "error_message": row["error_message"],
            "correlation_id": row["correlation_id"],
        }
    )


def new_public(event: ActivityCreate, event_id: uuid.UUID, timestamp: datetime) -> ActivityPublic:
    """The public form of `event`, created with `event_id` at `timestamp` (as `to_public` builds it)."""
    return _public(
        {
            "id": event_id,
            "timestamp": timestamp,
            "tool_name": event.tool_name,
            "user_source": event.user_source,
            "event_type": event.event_type,
            "status": event.status,
            "data": event.data,
            "duration_ms": event.duration_ms,
            "error_message": event.error_message,
            "correlation_id": event.correlation_id,
        }
    )


def _public(fields: dict[str, Any]) -> ActivityPublic:
    event = _new_public(ActivityPublic)
    _set(event, "__dict__", fields)
    _set(event, "__pydantic_fields_set__", set(_ALL_FIELDS))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


# SQLite's INSERT of a whole row, with the values as SQLAlchemy's SQLite dialect stores them (see
# `sqlite_row`). Given to the driver directly, it skips SQLAlchemy's per-value bind processing, which
# for a batch of 1,000 events costs more than SQLite's own work for them.
SQLITE_COLUMNS = tuple(column.name for column in activity_events.columns)
SQLITE_INSERT = (
    f"INSERT INTO {activity_events.name} ({', '.join(SQLITE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in SQLITE_COLUMNS)})"
)


_ONE_ROW = f"({', '.join('?' for _ in SQLITE_COLUMNS)})"


@functools.cache
def sqlite_insert_rows(count: int) -> str:
    """SQLite's INSERT of `count` whole rows in one statement (a parameter per column of each)."""
    return SQLITE_INSERT.replace(f"VALUES {_ONE_ROW}", "VALUES " + ", ".join([_ONE_ROW] * count))


def sqlite_ids_present(count: int) -> str:
    """SQLite's SELECT of which of `count` ids (each as `sa.Uuid` stores it: 32 hex digits) are stored."""
    return f"SELECT id FROM activity_events WHERE id IN ({', '.join(['?'] * count)})"


def sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text ("2026-11-26 17:58:25.508149", microseconds always written), in
    UTC like `UtcDateTime` (naive is UTC); the same text keeps the timestamp indexes in time order."""
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


@dataclass(slots=True)
class SqliteText:
    """A new event's row as SQLite stores it, but for what its transaction decides (`sqlite_row`).

    Encoded when the create is submitted, on the event loop's thread (`sqlite_text`): a batch's
    transaction runs on the writer's thread, the batch path's bottleneck, while the loop's thread has
    time to spare (`bench batch`)."""

    id: uuid.UUID
    id_hex: str  # sa.Uuid on SQLite: 32 hex digits
    # The columns from `id` to `correlation_id`, in `SQLITE_COLUMNS` order; the timestamp is None when
    # the event takes its transaction's time.
    values: tuple[Any, ...]


def sqlite_text(event: ActivityCreate) -> SqliteText:
    """`event`'s row (a new id when it names none), but for what its transaction decides."""
    event_id = event.id or uuid7()
    id_hex = event_id.hex
    return SqliteText(
        event_id,
        id_hex,
        (
            id_hex,
            sqlite_datetime(event.timestamp) if event.timestamp is not None else None,
            event.tool_name,
            event.user_source,
            ENUM_TEXT[event.event_type],
            ENUM_TEXT[event.status],
            json_dumps(event.data),  # the engines' json_serializer
            event.duration_ms,
            event.error_message,
            event.correlation_id,
        ),
    )


def sqlite_row(text: SqliteText, *, seq: int, now: str) -> tuple[Any, ...]:
    """The whole row of a new event, in `SQLITE_COLUMNS` order: its change number `seq` (both `seq` and
    `change_seq`), and `now`, its transaction's time as `sqlite_datetime` writes it (`updated_at`, and
    the timestamp when the event gave none). tests/store/test_rows.py holds each value equal to what
    SQLAlchemy stores for the same row."""
    values = text.values
    if values[1] is None:
        return (seq, values[0], now, *values[2:], now, seq)
    return (seq, *values, now, seq)
