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
from activity_feed.schemas import ActivityCreate, ActivityPublic, EventStatus, EventType
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
    event = _new_public(ActivityPublic)
    _set(
        event,
        "__dict__",
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
        },
    )
    _set(event, "__pydantic_fields_set__", set(_ALL_FIELDS))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


# SQLite's INSERT of a whole row, with the values as SQLAlchemy's SQLite dialect stores them (see
# `sqlite_values`). Given to the driver directly, it skips SQLAlchemy's per-value bind processing, which
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


@dataclass(frozen=True, slots=True)
class SqliteText:
    """The values of a new event's row that its transaction does not decide, as SQLite stores them.

    Encoded when the create is submitted, on the event loop's thread (`sqlite_text`): a batch's
    transaction runs on the writer's thread, the batch path's bottleneck, while the loop's thread has
    time to spare (py-spy under `bench batch`: the writer busy 92% of the time, the loop about 50%)."""

    id: uuid.UUID
    id_hex: str  # sa.Uuid on SQLite: 32 hex digits
    timestamp: str | None  # None: the event takes its transaction's time
    data: str


def sqlite_text(event: ActivityCreate) -> SqliteText:
    """`event`'s id (a new one when it names none), timestamp and data, encoded for SQLite."""
    event_id = event.id or uuid7()
    timestamp = sqlite_datetime(event.timestamp) if event.timestamp is not None else None
    return SqliteText(event_id, event_id.hex, timestamp, json_dumps(event.data))


def sqlite_values(
    row: Mapping[str, Any], *, updated_at: str | None = None, text: SqliteText | None = None
) -> tuple[Any, ...]:
    """`row` (every column of `activity_events`) as SQLite stores it, in `SQLITE_COLUMNS` order.

    `updated_at`, when given, is the row's `updated_at` as `sqlite_datetime` writes it (every row of a
    transaction has the same); `text`, when given, holds its id, timestamp and data already encoded.
    tests/store/test_rows.py holds each value equal to what SQLAlchemy stores for the same row."""
    if text is None:
        id_hex, data, timestamp = row["id"].hex, json_dumps(row["data"]), sqlite_datetime(row["timestamp"])
    else:
        id_hex, data = text.id_hex, text.data
        timestamp = text.timestamp if text.timestamp is not None else sqlite_datetime(row["timestamp"])
    return (
        row["seq"],
        id_hex,
        timestamp,
        row["tool_name"],
        row["user_source"],
        row["event_type"],
        row["status"],
        data,  # the engines' json_serializer
        row["duration_ms"],
        row["error_message"],
        row["correlation_id"],
        updated_at if updated_at is not None else sqlite_datetime(row["updated_at"]),
        row["change_seq"],
    )
