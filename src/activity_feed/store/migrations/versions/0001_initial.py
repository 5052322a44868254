"""The activity_events table, its tombstones and the change counter.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigIntKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonObject = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "activity_events",
        sa.Column("seq", BigIntKey, primary_key=True, autoincrement=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", Timestamp, nullable=False),
        sa.Column("tool_name", sa.String(200)),
        sa.Column("user_source", sa.String(200)),
        sa.Column("event_type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("data", JsonObject, nullable=False),
        sa.Column("duration_ms", sa.Float()),
        sa.Column("error_message", sa.Text()),
        sa.Column("correlation_id", sa.String(200)),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("id", name="uq_activity_events_id"),
        sa.UniqueConstraint("change_seq", name="uq_activity_events_change_seq"),
        sa.CheckConstraint(
            "event_type IN ('tool_call', 'tool_result', 'voice_command', 'system_event', 'api_request')",
            name="ck_activity_events_event_type",
        ),
        sa.CheckConstraint("status IN ('pending', 'success', 'error')", name="ck_activity_events_status"),
    )
    # `recent` sorts by (timestamp, seq) after at most one equality filter: one index per filter keeps
    # every such query an index range scan that stops after `limit` rows, however many rows there are.
    op.create_index("ix_activity_events_recent", "activity_events", ["timestamp", "seq"])
    for column in ("event_type", "status", "tool_name", "user_source", "correlation_id"):
        op.create_index(f"ix_activity_events_{column}", "activity_events", [column, "timestamp", "seq"])

    op.create_table(
        "activity_deletions",
        sa.Column("change_seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deleted_at", Timestamp, nullable=False),
    )
    counter = op.create_table(
        "activity_change_counter",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(counter, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("activity_change_counter")
    op.drop_table("activity_deletions")
    op.drop_index("ix_activity_events_recent", table_name="activity_events")
    for column in ("event_type", "status", "tool_name", "user_source", "correlation_id"):
        op.drop_index(f"ix_activity_events_{column}", table_name="activity_events")
    op.drop_table("activity_events")
