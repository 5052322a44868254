"""Queries: one event, the recent list with its filters, per-tool statistics, and changes by cursor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from activity_feed.errors import ReferenceNotFoundError
from activity_feed.schemas import (
    ActivityPublic,
    Change,
    ChangeType,
    DeletedEvent,
    EventStatus,
    EventType,
    ToolStats,
)
from activity_feed.store.rows import to_public
from activity_feed.store.schema import activity_change_counter, activity_deletions, activity_events

_events = activity_events


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentQuery:
    """The filters of `GET /activities/recent`; each one that is set must match exactly."""

    limit: int = 50
    event_type: EventType | None = None
    status: EventStatus | None = None
    tool_name: str | None = None
    user_source: str | None = None
    correlation_id: str | None = None
    before: uuid.UUID | None = None


async def get_event(conn: AsyncConnection, *, event_id: uuid.UUID) -> ActivityPublic | None:
    row = (await conn.execute(sa.select(_events).where(_events.c.id == event_id))).mappings().first()
    return None if row is None else to_public(row)


async def recent(conn: AsyncConnection, *, query: RecentQuery) -> list[ActivityPublic]:
    stmt = sa.select(_events).order_by(_events.c.timestamp.desc(), _events.c.seq.desc()).limit(query.limit)
    for column, value in (
        (_events.c.event_type, query.event_type),
        (_events.c.status, query.status),
        (_events.c.tool_name, query.tool_name),
        (_events.c.user_source, query.user_source),
        (_events.c.correlation_id, query.correlation_id),
    ):
        if value is not None:
            stmt = stmt.where(
                column == (value.value if isinstance(value, EventType | EventStatus) else value)
            )
    if query.before is not None:
        anchor = (
            await conn.execute(
                sa.select(_events.c.timestamp, _events.c.seq).where(_events.c.id == query.before)
            )
        ).first()
        if anchor is None:
            raise ReferenceNotFoundError(
                f"before: no event with id {query.before}",
                location=("query", "before"),
                value=str(query.before),
            )
        stmt = stmt.where(
            sa.tuple_(_events.c.timestamp, _events.c.seq) < sa.tuple_(anchor.timestamp, anchor.seq)
        )
    return [to_public(row) for row in (await conn.execute(stmt)).mappings()]


async def tool_stats(conn: AsyncConnection, *, since: datetime | None = None) -> list[ToolStats]:
    """Count, errors and nearest-rank p50/p95 of `duration_ms` per tool, busiest tool first."""
    window = [] if since is None else [_events.c.timestamp >= since]
    counts = (
        sa.select(
            _events.c.tool_name,
            sa.func.count().label("count"),
            sa.func.sum(sa.case((_events.c.status == EventStatus.ERROR.value, 1), else_=0)).label("errors"),
        )
        .where(*window)
        .group_by(_events.c.tool_name)
    )
    # Window functions compute the same nearest-rank percentiles on SQLite and PostgreSQL alike.
    ranked = (
        sa.select(
            _events.c.tool_name,
            _events.c.duration_ms,
            sa.func.row_number()
            .over(partition_by=_events.c.tool_name, order_by=_events.c.duration_ms)
            .label("rank"),
            sa.func.count().over(partition_by=_events.c.tool_name).label("n"),
        )
        .where(_events.c.duration_ms.is_not(None), *window)
        .subquery()
    )
    percentiles = sa.select(
        ranked.c.tool_name,
        sa.func.min(sa.case((ranked.c.rank >= 0.5 * ranked.c.n, ranked.c.duration_ms))).label("p50"),
        sa.func.min(sa.case((ranked.c.rank >= 0.95 * ranked.c.n, ranked.c.duration_ms))).label("p95"),
    ).group_by(ranked.c.tool_name)
    durations = {row.tool_name: (row.p50, row.p95) for row in await conn.execute(percentiles)}
    stats = []
    for row in await conn.execute(counts):
        p50, p95 = durations.get(row.tool_name, (None, None))
        errors = int(row.errors or 0)
        stats.append(
            ToolStats(
                tool_name=row.tool_name,
                count=int(row[1]),
                errors=errors,
                error_rate=round(errors / total, 4) if (total := int(row[1])) else 0.0,
                p50_duration_ms=p50,
                p95_duration_ms=p95,
            )
        )
    stats.sort(key=lambda tool: (-tool.count, tool.tool_name or ""))
    return stats


async def last_change(conn: AsyncConnection) -> int:
    """The newest change number handed out: the cursor of 'now'."""
    stmt = sa.select(activity_change_counter.c.value).where(activity_change_counter.c.id == 1)
    return int((await conn.execute(stmt)).scalar_one())


async def replay_window(conn: AsyncConnection) -> tuple[int, int]:
    """The oldest cursor that can still be replayed in full (tombstones below it were dropped by
    retention), and the newest change number handed out."""
    stmt = sa.select(activity_change_counter.c.replay_floor, activity_change_counter.c.value).where(
        activity_change_counter.c.id == 1
    )
    floor, head = (await conn.execute(stmt)).one()
    return int(floor), int(head)


_REPLAY_COLUMNS: tuple[str, ...] = ("seq", "id", "timestamp", "tool_name", "user_source", "event_type")
_REPLAY_COLUMNS += ("status", "data", "duration_ms", "error_message", "correlation_id")


def _changes_after(cursor: int, limit: int) -> sa.Select[tuple[object, ...]]:
    """Event changes and deletions after `cursor` in ONE statement, so in one snapshot of the database:
    read by two statements, a transaction committed between them (PostgreSQL's READ COMMITTED and
    SQLite's autocommit reads both allow it) could show its deletion without the event change numbered
    just below it, and a reader going by change numbers would skip that change for good."""
    events = (
        sa.select(
            _events.c.change_seq,
            *(_events.c[name] for name in _REPLAY_COLUMNS),
            sa.literal(False, sa.Boolean()).label("deleted"),
        )
        .where(_events.c.change_seq > cursor)
        .order_by(_events.c.change_seq)
        .limit(limit)
        .subquery()
    )
    deletions = (
        sa.select(
            activity_deletions.c.change_seq,
            *(
                activity_deletions.c.id
                if name == "id"
                else sa.cast(sa.null(), _events.c[name].type).label(name)
                for name in _REPLAY_COLUMNS
            ),
            sa.literal(True, sa.Boolean()).label("deleted"),
        )
        .where(activity_deletions.c.change_seq > cursor)
        .order_by(activity_deletions.c.change_seq)
        .limit(limit)
        .subquery()
    )
    both = sa.union_all(sa.select(events), sa.select(deletions)).subquery()
    return sa.select(both).order_by(both.c.change_seq).limit(limit)


async def changes_since(
    conn: AsyncConnection, *, cursor: int, limit: int, origin: int | None = None
) -> list[Change]:
    """Up to `limit` changes after `cursor`, in change order, each event folded into its latest state.

    An event created after `origin` (the cursor the client first gave, when reading page by page;
    `cursor` by default) is replayed as `activity_logged`: the client has never seen it."""
    origin = cursor if origin is None else origin
    result = await conn.execute(_changes_after(cursor, limit))
    changes: list[Change] = []
    for row in result.mappings():
        if row["deleted"]:
            changes.append(
                Change(seq=row["change_seq"], type=ChangeType.DELETED, event=DeletedEvent(id=row["id"]))
            )
        else:
            changes.append(
                Change(
                    seq=row["change_seq"],
                    type=_replayed_type(row["seq"], row["status"], origin),
                    event=to_public(row),
                )
            )
    return changes


def _replayed_type(created_seq: int, status: str, cursor: int) -> ChangeType:
    if created_seq > cursor:
        return ChangeType.LOGGED
    if status == EventStatus.SUCCESS:
        return ChangeType.COMPLETED
    if status == EventStatus.ERROR:
        return ChangeType.FAILED
    return ChangeType.UPDATED
