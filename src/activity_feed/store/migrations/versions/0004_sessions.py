"""Sessions: the `session_id` column, the two MCP event types, and the per-session summary table.

On SQLite the event type CHECK can only change by copying the table, so the new column is added in the
same copy; PostgreSQL adds a nullable column without rewriting the table and drops and adds the check.
The session index is partial (only rows that have a session), so events without one never touch it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from activity_feed.store.migrate import PROGRESS_LOGGER

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The values as they were when this revision was written: a later change of the enums needs its own.
OLD_EVENT_TYPES = ("tool_call", "tool_result", "voice_command", "system_event", "api_request")
EVENT_TYPES = (*OLD_EVENT_TYPES, "mcp_request", "mcp_notification")
Timestamp = sa.DateTime(timezone=True)
_HAS_SESSION = "session_id IS NOT NULL"

log = logging.getLogger(PROGRESS_LOGGER)


def _with_or(column: str, values: tuple[str, ...]) -> str:
    return " OR ".join(f"{column} = '{value}'" for value in values)


def upgrade() -> None:
    # On SQLite this copies the table: store/migrate.py says so before the upgrade begins.
    with op.batch_alter_table("activity_events") as batch:
        batch.add_column(sa.Column("session_id", sa.String(200)))
        batch.drop_constraint("ck_activity_events_event_type", type_="check")
        batch.create_check_constraint("ck_activity_events_event_type", _with_or("event_type", EVENT_TYPES))
    log.info("indexing session_id")
    op.create_index(
        "ix_activity_events_session_id",
        "activity_events",
        ["session_id", "timestamp", "seq"],
        sqlite_where=sa.text(_HAS_SESSION),
        postgresql_where=sa.text(_HAS_SESSION),
    )
    sessions = op.create_table(
        "activity_sessions",
        sa.Column("session_id", sa.String(200), primary_key=True),
        sa.Column("first_seen", Timestamp, nullable=False),
        sa.Column("last_seen", Timestamp, nullable=False),
        sa.Column("user_source", sa.String(200)),
        sa.Column("server", sa.String(200)),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_activity_sessions_last_seen", "activity_sessions", ["last_seen", "session_id"])
    # The column is new, so no event has a session yet and this finds nothing; it stays so that the
    # summary is right by construction if the revisions are ever replayed over data that has one.
    events = sa.table(
        "activity_events",
        sa.column("session_id", sa.String()),
        sa.column("timestamp", Timestamp),
        sa.column("status", sa.String()),
    )
    op.execute(
        sessions.insert().from_select(
            ["session_id", "first_seen", "last_seen", "events", "errors", "pending"],
            sa.select(
                events.c.session_id,
                sa.func.min(events.c.timestamp),
                sa.func.max(events.c.timestamp),
                sa.func.count(),
                sa.func.sum(sa.case((events.c.status == "error", 1), else_=0)),
                sa.func.sum(sa.case((events.c.status == "pending", 1), else_=0)),
            )
            .where(events.c.session_id.is_not(None))
            .group_by(events.c.session_id),
        )
    )


def downgrade() -> None:
    op.drop_index("ix_activity_sessions_last_seen", table_name="activity_sessions")
    op.drop_table("activity_sessions")
    op.drop_index("ix_activity_events_session_id", table_name="activity_events")
    # Events of the new types cannot stay under the old check: they go with the column.
    new_types = "event_type = 'mcp_request' OR event_type = 'mcp_notification'"
    deleted = op.get_bind().execute(sa.text(f"DELETE FROM activity_events WHERE {new_types}")).rowcount
    if deleted:
        log.info("deleted %d events of the types mcp_request and mcp_notification", deleted)
    with op.batch_alter_table("activity_events") as batch:
        batch.drop_constraint("ck_activity_events_event_type", type_="check")
        batch.create_check_constraint(
            "ck_activity_events_event_type", _with_or("event_type", OLD_EVENT_TYPES)
        )
        batch.drop_column("session_id")
