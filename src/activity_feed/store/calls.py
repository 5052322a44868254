"""Reads that give a process its starting state for what it then follows live (the alerts' windows and
pending calls, alerts/seed.py): few columns, along indexes, bounded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from activity_feed.store.schema import activity_events

_events = activity_events
_CALL_COLUMNS = (
    _events.c.id,
    _events.c.tool_name,
    _events.c.event_type,
    _events.c.status,
    _events.c.duration_ms,
    _events.c.timestamp,
    _events.c.updated_at,
    _events.c.change_seq,
)


@dataclass(frozen=True, slots=True)
class CallRow:
    """An event as a call: which tool, how it stands, and when it last changed."""

    id: uuid.UUID
    tool_name: str
    event_type: str
    status: str
    duration_ms: float | None
    timestamp: datetime
    updated_at: datetime
    change_seq: int


async def calls_changed(conn: AsyncConnection, *, after: int, up_to: int) -> list[CallRow]:
    """Events with a tool name whose latest change is numbered in (after, up_to], in change order."""
    query = (
        sa.select(*_CALL_COLUMNS)
        .where(_events.c.change_seq > after, _events.c.change_seq <= up_to, _events.c.tool_name.is_not(None))
        .order_by(_events.c.change_seq)
    )
    return [CallRow(**row) for row in (await conn.execute(query)).mappings()]


async def pending_calls(conn: AsyncConnection, *, up_to: int, limit: int) -> list[CallRow]:
    """The newest `limit` pending events with a tool name, as of change `up_to`, oldest first."""
    query = (
        sa.select(*_CALL_COLUMNS)
        .where(
            _events.c.status == "pending",
            _events.c.change_seq <= up_to,
            _events.c.tool_name.is_not(None),
        )
        .order_by(_events.c.timestamp.desc(), _events.c.seq.desc())
        .limit(limit)
    )
    rows = [CallRow(**row) for row in (await conn.execute(query)).mappings()]
    rows.reverse()
    return rows


async def newest_named(
    conn: AsyncConnection, *, event_type: str, prefix: str, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """(change number, data) of the newest `limit` events of `event_type` whose tool name starts with
    `prefix`, newest first."""
    query = (
        sa.select(_events.c.change_seq, _events.c.data)
        .where(_events.c.event_type == event_type, _events.c.tool_name.startswith(prefix, autoescape=True))
        .order_by(_events.c.timestamp.desc(), _events.c.seq.desc())
        .limit(limit)
    )
    return [(row.change_seq, row.data) for row in await conn.execute(query)]
