"""Queries: one event, the recent list with its filters, per-tool statistics, and changes by cursor."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
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
from activity_feed.store.rows import PUBLIC_COLUMNS, to_public
from activity_feed.store.schema import activity_change_counter, activity_deletions, activity_events

_events = activity_events


@dataclass(frozen=True, slots=True, kw_only=True)
class EventMatch:
    """The filters that `recent` and the export share: each one that is set must match exactly; `since`
    keeps the events with a timestamp from then on."""

    event_type: EventType | None = None
    status: EventStatus | None = None
    tool_name: str | None = None
    user_source: str | None = None
    correlation_id: str | None = None
    session_id: str | None = None
    since: datetime | None = None

    def matches(self) -> list[sa.ColumnElement[bool]]:
        """The conditions of the exact filters that are set (not `since`, which each read bounds its own
        way)."""
        found: list[sa.ColumnElement[bool]] = []
        for column, value in (
            (_events.c.event_type, self.event_type),
            (_events.c.status, self.status),
            (_events.c.tool_name, self.tool_name),
            (_events.c.user_source, self.user_source),
            (_events.c.correlation_id, self.correlation_id),
            (_events.c.session_id, self.session_id),
        ):
            if value is not None:
                found.append(column == (value.value if isinstance(value, EventType | EventStatus) else value))
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentQuery(EventMatch):
    """The filters of `GET /activities/recent`, its page size and where it pages back from."""

    limit: int = 50
    before: uuid.UUID | None = None


async def get_event(conn: AsyncConnection, *, event_id: uuid.UUID) -> ActivityPublic | None:
    row = (await conn.execute(sa.select(_events).where(_events.c.id == event_id))).mappings().first()
    return None if row is None else to_public(row)


async def recent(conn: AsyncConnection, *, query: RecentQuery) -> list[ActivityPublic]:
    stmt = await _recent_statement(conn, query)
    return [to_public(row) for row in (await conn.execute(stmt)).mappings()]


@dataclass(frozen=True, slots=True)
class RecentPage:
    """The recent events and the stream cursor of the same moment: every change up to `cursor` shows in
    `events`, none after it does, so a stream resumed from `cursor` follows on without gap or duplicate."""

    events: list[ActivityPublic]
    cursor: int


async def recent_page(conn: AsyncConnection, *, query: RecentQuery) -> RecentPage:
    """As `recent`, with the newest change number read in the same statement, so in one snapshot on both
    databases: read apart, a change committed between the two reads would be missed or seen twice."""
    stmt = await _recent_statement(conn, query)
    head = sa.select(activity_change_counter.c.value).where(activity_change_counter.c.id == 1)
    rows = (await conn.execute(stmt.add_columns(head.scalar_subquery().label("head_change")))).mappings()
    events: list[ActivityPublic] = []
    cursor: int | None = None
    for row in rows:
        events.append(to_public(row))
        cursor = row["head_change"]
    if cursor is None:
        # No event matched, so no row brought the counter: join its one row to the page instead (dearer,
        # hence only now), again in one statement. An event that arrived meanwhile is on that page.
        page = stmt.subquery("page")
        joined = (
            sa.select(activity_change_counter.c.value.label("head_change"), page)
            .select_from(activity_change_counter.outerjoin(page, sa.true()))
            .where(activity_change_counter.c.id == 1)
            .order_by(page.c.timestamp.desc(), page.c.seq.desc())
        )
        found = (await conn.execute(joined)).mappings().all()
        events = [to_public(row) for row in found if row["id"] is not None]
        cursor = found[0]["head_change"]
    return RecentPage(events=events, cursor=int(cursor))


async def _recent_statement(conn: AsyncConnection, query: RecentQuery) -> sa.Select[Any]:
    stmt = sa.select(_events).order_by(_events.c.timestamp.desc(), _events.c.seq.desc()).limit(query.limit)
    stmt = stmt.where(*query.matches())
    if query.since is not None:
        stmt = stmt.where(_events.c.timestamp >= query.since)
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
    return stmt


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsWindow:
    """Per-tool statistics and the events they cover.

    `since`: every event with a timestamp from then on was counted (None when no event was). It is the
    requested `since`, unless the limit left out older events that `since` would have taken
    (`truncated`): then it is the timestamp of the oldest event counted."""

    tools: list[ToolStats]
    events: int
    since: datetime | None
    truncated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    """Which events a statistic covers: from `since` on, and each other field that is set matching."""

    since: datetime | None = None
    session_id: str | None = None
    event_type: EventType | None = None
    tool_name: str | None = None

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        found: list[sa.ColumnElement[bool]] = []
        if self.since is not None:
            found.append(_events.c.timestamp >= self.since)
        if self.session_id is not None:
            found.append(_events.c.session_id == self.session_id)
        if self.event_type is not None:
            found.append(_events.c.event_type == self.event_type.value)
        if self.tool_name is not None:
            found.append(_events.c.tool_name == self.tool_name)
        return found


async def tool_stats(
    conn: AsyncConnection, *, where: EventFilter = EventFilter(), max_events: int | None = None
) -> StatsWindow:
    """Count, errors and nearest-rank p50/p95 of `duration_ms` per tool, busiest tool first, over the
    events that match `where` (from its `since` on), and at most the newest `max_events` of them (by
    timestamp, then arrival).

    With `max_events`, the cost is bounded by it whatever the size of the table: the window is read
    backwards along the timestamp index and stops after `max_events` rows (left to itself, SQLite would
    rather scan a whole index that is in tool order, to group without sorting)."""
    newest_first = (_events.c.timestamp.desc(), _events.c.seq.desc())
    since = where.since
    matching = sa.select(
        _events.c.tool_name, _events.c.status, _events.c.duration_ms, _events.c.timestamp
    ).where(*where.conditions())
    truncated = False
    if max_events is not None:
        matching = matching.order_by(*newest_first).limit(max_events)
        # The newest event that does not fit: the same walk down the index, one step further.
        first_left_out = (
            sa.select(_events.c.seq)
            .where(*where.conditions())
            .order_by(*newest_first)
            .offset(max_events)
            .limit(1)
        )
        truncated = (await conn.execute(first_left_out)).first() is not None
    window = matching.subquery()
    counts = sa.select(
        window.c.tool_name,
        sa.func.count().label("count"),
        sa.func.sum(sa.case((window.c.status == EventStatus.ERROR.value, 1), else_=0)).label("errors"),
        sa.func.min(window.c.timestamp).label("oldest"),
    ).group_by(window.c.tool_name)
    # Window functions compute the same nearest-rank percentiles on SQLite and PostgreSQL alike.
    ranked = (
        sa.select(
            window.c.tool_name,
            window.c.duration_ms,
            sa.func.row_number()
            .over(partition_by=window.c.tool_name, order_by=window.c.duration_ms)
            .label("rank"),
            sa.func.count().over(partition_by=window.c.tool_name).label("n"),
        )
        .where(window.c.duration_ms.is_not(None))
        .subquery()
    )
    percentiles = sa.select(
        ranked.c.tool_name,
        sa.func.min(sa.case((ranked.c.rank >= 0.5 * ranked.c.n, ranked.c.duration_ms))).label("p50"),
        sa.func.min(sa.case((ranked.c.rank >= 0.95 * ranked.c.n, ranked.c.duration_ms))).label("p95"),
    ).group_by(ranked.c.tool_name)
    durations = {row.tool_name: (row.p50, row.p95) for row in await conn.execute(percentiles)}
    stats = []
    oldest: datetime | None = None
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
        oldest = row.oldest if oldest is None else min(oldest, row.oldest)
    stats.sort(key=lambda tool: (-tool.count, tool.tool_name or ""))
    return StatsWindow(
        tools=stats,
        events=sum(tool.count for tool in stats),
        since=oldest if truncated or since is None else since,
        truncated=truncated,
    )


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


_REPLAY_COLUMNS = ("seq", *PUBLIC_COLUMNS)


def _changes_after(cursor: int, limit: int, *, data_as_text: bool = False) -> sa.CompoundSelect[Any]:
    """Event changes and deletions after `cursor` in ONE statement, so in one snapshot of the database:
    read by two statements, a transaction committed between them (PostgreSQL's READ COMMITTED and
    SQLite's autocommit reads both allow it) could show its deletion without the event change numbered
    just below it, and a reader going by change numbers would skip that change for good.

    A plain UNION ALL ordered as a whole is merged from the two indexes row by row on both databases,
    so rows are read only as they are fetched (ordered subqueries would make SQLite sort every row of
    each, `data` included, before the first comes out). With `data_as_text`, `data` comes as the JSON
    text the database holds, not decoded."""

    def data_column(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.cast(column, sa.Text()).label("data") if data_as_text else column

    events = sa.select(
        _events.c.change_seq,
        *(data_column(_events.c.data) if name == "data" else _events.c[name] for name in _REPLAY_COLUMNS),
        sa.literal(False, sa.Boolean()).label("deleted"),
    ).where(_events.c.change_seq > cursor)
    deletions = sa.select(
        activity_deletions.c.change_seq,
        *(
            activity_deletions.c.id
            if name == "id"
            else data_column(sa.cast(sa.null(), _events.c.data.type))
            if name == "data"
            else sa.cast(sa.null(), _events.c[name].type).label(name)
            for name in _REPLAY_COLUMNS
        ),
        sa.literal(True, sa.Boolean()).label("deleted"),
    ).where(activity_deletions.c.change_seq > cursor)
    both = sa.union_all(events, deletions)
    return both.order_by(both.selected_columns.change_seq).limit(limit)


async def changes_since(
    conn: AsyncConnection, *, cursor: int, limit: int, origin: int | None = None
) -> list[Change]:
    """Up to `limit` changes after `cursor`, in change order, each event folded into its latest state.

    An event created after `origin` (the cursor the client first gave, when reading page by page;
    `cursor` by default) is replayed as `activity_logged`: the client has never seen it."""
    origin = cursor if origin is None else origin
    result = await conn.execute(_changes_after(cursor, limit))
    return [_change(row, origin) for row in result.mappings()]


@dataclass(frozen=True, slots=True)
class ChangePage:
    """Changes in change order, for sending: each event's `data` is an `orjson.Fragment`, the JSON text
    the database holds, which orjson writes into a message as it is (never decoded and encoded again).
    `more` when the page stopped at its count or its size: changes after its last one may be waiting."""

    changes: list[Change]
    more: bool


# What a change weighs in a page besides its `data`: its other fields and the message around them.
CHANGE_OVERHEAD_BYTES = 256
# Rows fetched from the database at a time: what a page may read past its size, at most.
_FETCH_ROWS = 16


async def changes_page(
    conn: AsyncConnection, *, cursor: int, limit: int, max_bytes: int, origin: int | None = None
) -> ChangePage:
    """As `changes_since`, but the page also stops once its changes' `data` reach `max_bytes` (the
    change that crosses the line included, so that one large event still moves the page on). Rows are
    fetched a few at a time, so no more than that is ever read into memory."""
    origin = cursor if origin is None else origin
    statement = _changes_after(cursor, limit, data_as_text=True).execution_options(yield_per=_FETCH_ROWS)
    result = await conn.stream(statement)
    changes: list[Change] = []
    size = 0
    try:
        async for row in result.mappings():
            if row["deleted"]:
                changes.append(_change(row, origin))
            else:
                text = row["data"]
                size += len(text)
                changes.append(_change({**row, "data": orjson.Fragment(text)}, origin))
            size += CHANGE_OVERHEAD_BYTES
            if size >= max_bytes:
                return ChangePage(changes, more=True)
    finally:
        await result.close()
    return ChangePage(changes, more=len(changes) == limit)


def _change(row: Mapping[str, Any], origin: int) -> Change:
    if row["deleted"]:
        return Change(seq=row["change_seq"], type=ChangeType.DELETED, event=DeletedEvent(id=row["id"]))
    return Change(
        seq=row["change_seq"], type=_replayed_type(row["seq"], row["status"], origin), event=to_public(row)
    )


def _replayed_type(created_seq: int, status: str, cursor: int) -> ChangeType:
    if created_seq > cursor:
        return ChangeType.LOGGED
    if status == EventStatus.SUCCESS:
        return ChangeType.COMPLETED
    if status == EventStatus.ERROR:
        return ChangeType.FAILED
    return ChangeType.UPDATED
