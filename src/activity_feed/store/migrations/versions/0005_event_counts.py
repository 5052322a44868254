"""Event counts: the events by type and status, kept by the write transactions for `GET /metrics`.

The table starts from the events already stored, counted once here (a scan of the events: about 2 s per
1,000,000 on SQLite), with `reached` equal to `stored`: what came and went before is not known.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from activity_feed.store.migrate import PROGRESS_LOGGER

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger(PROGRESS_LOGGER)


def upgrade() -> None:
    counts = op.create_table(
        "activity_event_counts",
        sa.Column("event_type", sa.String(20), primary_key=True),
        sa.Column("status", sa.String(10), primary_key=True),
        sa.Column("stored", sa.BigInteger(), nullable=False),
        sa.Column("reached", sa.BigInteger(), nullable=False),
    )
    log.info("counting the stored events by type and status")
    events = sa.table(
        "activity_events", sa.column("event_type", sa.String()), sa.column("status", sa.String())
    )
    op.execute(
        counts.insert().from_select(
            ["event_type", "status", "stored", "reached"],
            sa.select(events.c.event_type, events.c.status, sa.func.count(), sa.func.count()).group_by(
                events.c.event_type, events.c.status
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("activity_event_counts")
