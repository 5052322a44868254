"""Every event that matches a filter, as JSON lines, page after page: what `GET /activities/export`
streams and `activity-feed export --database-url` writes.

Oldest first (by timestamp, then arrival), and only the events stored when the export began, so that an
export of a busy feed ends. Each page is one short query that starts where the last one ended (keyset
paging along the timestamp indexes), so memory holds one page whatever the size of the table, and no read
transaction stays open for the whole export (a long one would keep SQLite's WAL from being checkpointed,
and PostgreSQL's vacuum from cleaning up behind it). An event changed while the export runs is written as
it is when its page is read; one deleted before its page is read is not written.

Each line is the event exactly as the REST API answers it. On SQLite the row's columns are read as the
text the database holds and put together as that answer would be, `data` written as it is stored: no
datetime, UUID or JSON object is made per event, which is most of the cost of reading rows.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from activity_feed.store.reads import EventMatch
from activity_feed.store.schema import activity_events

_events = activity_events
# Rows per query: large enough that the query's own cost is small beside its rows' (about 300 bytes of
# JSON an event, 600 KB a page).
PAGE_SIZE = 2000
# A page also ends once its lines reach this size, so that events with large `data` (up to
# ACTIVITY_FEED_MAX_DATA_BYTES each) make shorter pages, not larger ones.
PAGE_BYTES = 2 * 1024 * 1024
# Rows fetched from the database at a time: what a page may read past PAGE_BYTES. The first page fetches
# few; later ones as many as make about a quarter of PAGE_BYTES, judged by the events read so far.
_FIRST_FETCH_ROWS = 50
_MAX_FETCH_ROWS = 500
_LINE = orjson.OPT_APPEND_NEWLINE

Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


# An export's filters are those of `recent`, without its page size or `before`.
ExportQuery = EventMatch


@dataclass(frozen=True, slots=True)
class ExportPage:
    """`count` events as JSON lines, each ending with a newline."""

    count: int
    lines: bytes


async def export_pages(
    connect: Connect, query: ExportQuery, *, page_size: int = PAGE_SIZE
) -> AsyncGenerator[ExportPage, None]:
    """The events matching `query`, oldest first, a page at a time (at most `page_size` events or about
    PAGE_BYTES of lines); each page is read on a connection of its own from `connect`."""
    async with connect() as conn:
        newest = (await conn.execute(sa.select(sa.func.max(_events.c.seq)))).scalar()
        sqlite = conn.dialect.name == "sqlite"
    if newest is None:
        return
    # SQLite: the timestamp as its stored text, which also serves to seek the next page (the text sorts
    # as the time does). PostgreSQL: asyncpg's own datetime, with no conversion of ours on the way.
    stamp = sa.type_coerce(_events.c.timestamp, sa.String()) if sqlite else _events.c.timestamp
    columns: Sequence[sa.ColumnElement[Any]] = (
        _events.c.seq,
        stamp,
        sa.type_coerce(_events.c.id, sa.String()) if sqlite else _events.c.id,
        _events.c.tool_name,
        _events.c.user_source,
        _events.c.event_type,
        _events.c.status,
        sa.type_coerce(_events.c.data, sa.String()) if sqlite else _events.c.data,
        _events.c.duration_ms,
        _events.c.error_message,
        _events.c.correlation_id,
        _events.c.session_id,
    )
    line = _sqlite_line if sqlite else _postgres_line
    base = (
        sa.select(*columns)
        .where(*query.matches(), _events.c.seq <= newest)
        .order_by(_events.c.timestamp, _events.c.seq)
        .limit(page_size)
    )

    async def read(statement: sa.Select[Any], fetch: int) -> tuple[ExportPage, Sequence[Any] | None, bool]:
        """A page, its last row, and whether more may follow it."""
        lines: list[bytes] = []
        size = 0
        last = None
        async with connect() as conn:
            result = await conn.stream(statement.execution_options(yield_per=fetch))
            try:
                async for rows in result.partitions():
                    written = [line(row) for row in rows]
                    lines += written
                    size += sum(map(len, written))
                    last = rows[-1]
                    if size >= PAGE_BYTES:
                        return ExportPage(len(lines), b"".join(lines)), last, True
            finally:
                await result.close()
        return ExportPage(len(lines), b"".join(lines)), last, len(lines) == page_size

    # Each later page starts after the last one, which is after `since` already: given both bounds, the
    # database may start from `since` every time, which would make the export quadratic.
    statement = base if query.since is None else base.where(_events.c.timestamp >= query.since)
    fetch = _FIRST_FETCH_ROWS
    while True:
        page, last, more = await read(statement, fetch)
        if page.count:
            yield page
        if not more or last is None:
            return
        average = len(page.lines) / page.count
        fetch = max(1, min(_MAX_FETCH_ROWS, int(PAGE_BYTES / 4 / average)))
        statement = base.where(sa.tuple_(stamp, _events.c.seq) > sa.tuple_(last[1], last[0]))


def _sqlite_line(row: Sequence[Any]) -> bytes:
    _, stamp, hex_id, tool, source, kind, status, data, duration, error, correlation, session = row
    # Stored as `YYYY-MM-DD HH:MM:SS.ffffff` in UTC; the API writes the fraction only when there is one.
    fraction = stamp[19:]
    return orjson.dumps(
        {
            "id": f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}",
            "timestamp": f"{stamp[:10]}T{stamp[11:19]}{'' if fraction == '.000000' else fraction}Z",
            "tool_name": tool,
            "user_source": source,
            "event_type": kind,
            "status": status,
            "data": orjson.Fragment(data),
            "duration_ms": None if duration is None else float(duration),
            "error_message": error,
            "correlation_id": correlation,
            "session_id": session,
        },
        option=_LINE,
    )


def _postgres_line(row: Sequence[Any]) -> bytes:
    _, stamp, event_id, tool, source, kind, status, data, duration, error, correlation, session = row
    return orjson.dumps(
        {
            "id": str(event_id),
            "timestamp": stamp.isoformat().replace("+00:00", "Z"),
            "tool_name": tool,
            "user_source": source,
            "event_type": kind,
            "status": status,
            "data": data,
            "duration_ms": duration,
            "error_message": error,
            "correlation_id": correlation,
            "session_id": session,
        },
        option=_LINE,
    )
