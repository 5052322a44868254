"""The tables. The first migration creates exactly these; keep them in step with `migrations/versions`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite keeps no zone, so one is put back on the way out."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


EVENT_TYPES = (
    "tool_call",
    "tool_result",
    "voice_command",
    "system_event",
    "api_request",
    "mcp_request",
    "mcp_notification",
)
STATUSES = ("pending", "success", "error")


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK that `column` holds one of `values`: comparisons joined by OR, where IN would be slow.

    SQLite checks `column IN (...)` by building a small temporary b-tree of the list, again for every
    row it inserts: in IN form the two checks cost about a third of a row's insert, in this form almost
    nothing."""
    return " OR ".join(f"{column} = '{value}'" for value in values)


# SQLite only aliases the rowid (its fastest key) for a column declared exactly INTEGER PRIMARY KEY.
BigIntKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonObject: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")

activity_events = sa.Table(
    "activity_events",
    metadata,
    # The change number of the event's creation: insertion order, the tie-breaker of `recent`, and how
    # replay tells an event created after a cursor from one that was only changed after it.
    sa.Column("seq", BigIntKey, primary_key=True, autoincrement=False),
    sa.Column("id", sa.Uuid(as_uuid=True), nullable=False),
    sa.Column("timestamp", UtcDateTime(), nullable=False),
    sa.Column("tool_name", sa.String(200)),
    sa.Column("user_source", sa.String(200)),
    sa.Column("event_type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("data", JsonObject, nullable=False),
    sa.Column("duration_ms", sa.Float()),
    sa.Column("error_message", sa.Text()),
    sa.Column("correlation_id", sa.String(200)),
    sa.Column("session_id", sa.String(200)),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # The change counter's value at this event's latest change: what replay by cursor reads.
    sa.Column("change_seq", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("id", name="uq_activity_events_id"),
    sa.UniqueConstraint("change_seq", name="uq_activity_events_change_seq"),
    sa.CheckConstraint(one_of("event_type", EVENT_TYPES), name="ck_activity_events_event_type"),
    sa.CheckConstraint(one_of("status", STATUSES), name="ck_activity_events_status"),
    sa.Index("ix_activity_events_recent", "timestamp", "seq"),
    sa.Index("ix_activity_events_event_type", "event_type", "timestamp", "seq"),
    sa.Index("ix_activity_events_status", "status", "timestamp", "seq"),
    sa.Index("ix_activity_events_tool_name", "tool_name", "timestamp", "seq"),
    sa.Index("ix_activity_events_user_source", "user_source", "timestamp", "seq"),
    sa.Index("ix_activity_events_correlation_id", "correlation_id", "timestamp", "seq"),
    # Partial: most events belong to no session, and those then cost nothing to index.
    sa.Index(
        "ix_activity_events_session_id",
        "session_id",
        "timestamp",
        "seq",
        sqlite_where=sa.text("session_id IS NOT NULL"),
        postgresql_where=sa.text("session_id IS NOT NULL"),
    ),
)

# One row per session: what `GET /activities/sessions` lists, kept by every write transaction that
# creates, completes or deletes an event of the session, so that listing never scans the events.
activity_sessions = sa.Table(
    "activity_sessions",
    metadata,
    sa.Column("session_id", sa.String(200), primary_key=True),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    sa.Column("user_source", sa.String(200)),
    sa.Column("server", sa.String(200)),
    sa.Column("events", sa.BigInteger(), nullable=False),
    sa.Column("errors", sa.BigInteger(), nullable=False),
    sa.Column("pending", sa.BigInteger(), nullable=False),
    sa.Index("ix_activity_sessions_last_seen", "last_seen", "session_id"),
)

# One row per (event type, status): how many events have it now and how many ever reached it, kept by
# every write transaction so that `GET /metrics` never counts the events table (store/event_counts.py).
activity_event_counts = sa.Table(
    "activity_event_counts",
    metadata,
    sa.Column("event_type", sa.String(20), primary_key=True),
    sa.Column("status", sa.String(10), primary_key=True),
    sa.Column("stored", sa.BigInteger(), nullable=False),
    sa.Column("reached", sa.BigInteger(), nullable=False),
)

# Deleted events leave a tombstone so that a reconnecting client learns of the deletion by cursor.
activity_deletions = sa.Table(
    "activity_deletions",
    metadata,
    sa.Column("change_seq", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("id", sa.Uuid(as_uuid=True), nullable=False),
    sa.Column("deleted_at", UtcDateTime(), nullable=False),
)

# One row: the last change number handed out (and the replay floor). Every write transaction locks it
# first, so change numbers commit in order on every database and every instance: replay by cursor can
# never skip a late commit.
activity_change_counter = sa.Table(
    "activity_change_counter",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger(), nullable=False),
    # The newest change number whose tombstone retention has dropped (0: none). A client whose cursor is
    # below it may have missed a deletion that can no longer be replayed, so it is told to resync.
    sa.Column("replay_floor", sa.BigInteger(), nullable=False, server_default="0"),
)
