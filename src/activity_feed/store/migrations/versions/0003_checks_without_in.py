"""The event type and status checks as comparisons joined by OR: the same rule, far cheaper on SQLite.

SQLite builds a temporary b-tree for an `IN (...)` list for every row it checks (see `one_of` in
store/schema.py). It cannot change a CHECK in place, so on SQLite Alembic's batch mode copies the table
(35 s per million events, measured on a 2-core VM); PostgreSQL drops and adds the constraints.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The values as they were when this revision was written: a later change of the enums needs its own.
EVENT_TYPES = ("tool_call", "tool_result", "voice_command", "system_event", "api_request")
STATUSES = ("pending", "success", "error")


def _with_or(column: str, values: tuple[str, ...]) -> str:
    return " OR ".join(f"{column} = '{value}'" for value in values)


def _with_in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _replace_checks(rule: Callable[[str, tuple[str, ...]], str]) -> None:
    # On SQLite this copies the table: store/migrate.py says so before the upgrade begins.
    with op.batch_alter_table("activity_events") as batch:
        batch.drop_constraint("ck_activity_events_event_type", type_="check")
        batch.drop_constraint("ck_activity_events_status", type_="check")
        batch.create_check_constraint("ck_activity_events_event_type", rule("event_type", EVENT_TYPES))
        batch.create_check_constraint("ck_activity_events_status", rule("status", STATUSES))


def upgrade() -> None:
    _replace_checks(_with_or)


def downgrade() -> None:
    _replace_checks(_with_in)
