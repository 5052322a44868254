"""The replay floor: how far back deletions can still be replayed once old tombstones are dropped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "activity_change_counter",
        sa.Column("replay_floor", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place; Alembic copies the table instead.
    with op.batch_alter_table("activity_change_counter") as batch:
        batch.drop_column("replay_floor")
