"""`ActivityStore`: the one object the rest of the service uses to read and write events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from activity_feed.errors import DataTooLargeError, StoreUnavailableError
from activity_feed.schemas import (
    ActivityCreate,
    ActivityPublic,
    ActivityUpdate,
    ActivityUpdateItem,
    BatchResult,
    Change,
    EventType,
    SessionPublic,
    StatsTimeline,
    ToolStats,
)
from activity_feed.store import calls, reads
from activity_feed.store.engine import (
    DEFAULT_DATABASE_TIMEOUT_SECONDS,
    async_url,
    create_reader_engine,
    create_sqlite_writer_engine,
    describe,
    failure_reason,
    is_sqlite,
    is_unavailable,
    refuses_writes,
)
from activity_feed.store.event_counts import EventCount, read_counts
from activity_feed.store.export import ExportPage, ExportQuery, export_pages
from activity_feed.store.merge import Combine, MergeItem, MergeRequest
from activity_feed.store.migrate import upgrade
from activity_feed.store.reads import ChangePage, EventFilter, RecentPage, RecentQuery, StatsWindow
from activity_feed.store.runner import AsyncTransactionRunner, SqliteTransactionRunner, TransactionRunner
from activity_feed.store.sessions import list_sessions
from activity_feed.store.timeline import timeline
from activity_feed.store.transaction import WriteOutcome, WriteRequest
from activity_feed.store.write_health import ReportingRunner, WriteHealth
from activity_feed.store.writer import GroupCommitWriter, OnCommit, WriteObserver


class ActivityStore:
    """Events in SQLite or PostgreSQL. Writes are group-committed; `on_commit` hears every change after
    its transaction commits, in change order."""

    def __init__(
        self,
        database_url: str,
        *,
        on_commit: OnCommit | None = None,
        observer: WriteObserver | None = None,
        batch_size: int = 2000,
        max_data_bytes: int | None = None,
        timeout: float = DEFAULT_DATABASE_TIMEOUT_SECONDS,
        bulk_readers: int = 2,
    ):
        self.url = describe(async_url(database_url))  # fails fast on a URL of an unknown kind
        self._database_url = database_url
        self._on_commit = on_commit
        self._observer = observer
        self._batch_size = batch_size
        # Updates that would merge an event's `data` past this size are refused (None: no limit).
        self._max_data_bytes = max_data_bytes
        # PostgreSQL only (a SQLite file does not go away): how long to wait on the database before
        # failing with StoreUnavailableError, to connect, per statement, and for a write's turn.
        self._timeout = timeout
        # Long reads (statistics, replays) run on connections of their own, so that however many run,
        # the ones a health check, `recent` or (on PostgreSQL) a write needs are never all taken.
        self._bulk_readers = bulk_readers
        self._reader: AsyncEngine | None = None
        self._bulk_reader: AsyncEngine | None = None
        self._runner: TransactionRunner | None = None
        self._write_health: WriteHealth | None = None
        self._writer: GroupCommitWriter | None = None

    async def start(self, *, migrate: bool = True) -> None:
        """Connect, bring the schema up to date, and start the writer.

        Raises `StoreUnavailableError` with a one-line reason when the database cannot be used, or cannot
        be written (read-only, locked by another process, full)."""
        self._reader = reader = create_reader_engine(self._database_url, timeout=self._timeout)
        self._bulk_reader = create_reader_engine(
            self._database_url, timeout=self._timeout, connections=self._bulk_readers
        )
        try:
            if migrate:
                await self._migrate(reader)
            await self.ping()
            queue_timeout: float | None = None
            if is_sqlite(reader.url):
                self._runner = SqliteTransactionRunner(create_sqlite_writer_engine(self._database_url))
            else:
                self._runner = AsyncTransactionRunner(reader)
                queue_timeout = self._timeout
            self._write_health = health = WriteHealth(self._runner)
            problem = await health.check()
        except (OSError, sa.exc.DBAPIError, sa.exc.TimeoutError, StoreUnavailableError) as exc:
            await self._dispose()
            use = "write to" if refuses_writes(exc) else "use"
            raise StoreUnavailableError(
                f"cannot {use} the database at {self.url}: {failure_reason(exc)}"
            ) from exc
        if problem is not None:
            await self._dispose()
            raise StoreUnavailableError(f"cannot write to the database at {self.url}: {problem}")
        self._writer = GroupCommitWriter(
            ReportingRunner(self._runner, health),
            on_commit=self._on_commit,
            observer=self._observer,
            batch_size=self._batch_size,
            queue_timeout=queue_timeout,
            draft_for_sqlite=is_sqlite(reader.url),
        )
        self._writer.start()

    async def _migrate(self, reader: AsyncEngine) -> None:
        if is_sqlite(reader.url):
            await upgrade(reader)
            return
        # An engine of its own, without the statement timeout: a migration may build an index on a large
        # table, or wait for another instance's migration to finish (they take turns under a lock).
        migrator = create_reader_engine(self._database_url, timeout=None)
        try:
            await upgrade(migrator)
        finally:
            await migrator.dispose()

    async def close(self) -> None:
        """Commit what is queued, then close every connection."""
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self._dispose()

    async def _dispose(self) -> None:
        if self._write_health is not None:
            await self._write_health.close()
            self._write_health = None
        if self._runner is not None:
            await self._runner.close()
            self._runner = None
        if self._reader is not None:
            await self._reader.dispose()
            self._reader = None
        if self._bulk_reader is not None:
            await self._bulk_reader.dispose()
            self._bulk_reader = None

    async def _submit(self, request: WriteRequest) -> WriteOutcome:
        if self._writer is None:
            raise StoreUnavailableError("the store is not running")
        return await self._writer.submit(request)

    @asynccontextmanager
    async def _read(self, *, bulk: bool = False) -> AsyncIterator[AsyncConnection]:
        engine = self._bulk_reader if bulk else self._reader
        if engine is None:
            raise StoreUnavailableError("the store is not running")
        try:
            async with engine.connect() as conn:
                yield conn
        except Exception as exc:  # only to translate: anything else goes on as it was
            if not is_unavailable(exc):
                raise
            raise StoreUnavailableError(f"database unavailable: {failure_reason(exc)}") from exc

    async def ping(self) -> None:
        """Raise `StoreUnavailableError` unless the database answers a trivial query."""
        async with self._read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def write_problem(self) -> str | None:
        """Why writes fail now, in one line, or None while they work: the writer's last transaction, or
        a probe when none is recent (store/write_health.py)."""
        if self._write_health is None:
            return "the store is not running"
        return await self._write_health.problem()

    # Writes. A returned value means the change is committed.

    async def create(self, *, event: ActivityCreate) -> tuple[ActivityPublic, bool]:
        """Create `event`; return it and True, or the stored event and False when its id exists."""
        outcome = await self._submit(WriteRequest(creates=[event]))
        if outcome.created:
            return outcome.created[0].event, True
        return outcome.existing[0], False

    async def apply_batch(
        self, *, creates: Sequence[ActivityCreate], updates: Sequence[ActivityUpdateItem]
    ) -> BatchResult:
        """Apply creates, then updates, in one transaction."""
        outcome = await self._submit(
            WriteRequest(creates=creates, updates=updates, max_data_bytes=self._max_data_bytes)
        )
        return _counts(outcome)

    async def merge(self, *, items: Sequence[MergeItem], combine: Combine) -> list[uuid.UUID | None]:
        """Place each item: merged into the stored event it is another view of, else created at its
        first free place (store/merge.py); return the id of the event each ended in, or None where none
        could be."""
        merges = MergeRequest(items, combine, self._max_data_bytes)
        outcome = await self._submit(WriteRequest(merges=merges))
        return outcome.merged

    def write_backlog(self) -> int:
        """How many items wait for the writer (0 while the store is not running)."""
        return 0 if self._writer is None else self._writer.backlog

    async def update(self, *, event_id: uuid.UUID, changes: ActivityUpdate) -> ActivityPublic | None:
        """Apply `changes` (merging `data`); return the event, or None when there is no such event.

        Raises `DataTooLargeError`, changing nothing, when the merged `data` would exceed the limit."""
        item = ActivityUpdateItem(id=event_id, **changes.model_dump(exclude_unset=True))
        outcome = await self._submit(WriteRequest(updates=[item], max_data_bytes=self._max_data_bytes))
        if outcome.too_large and self._max_data_bytes is not None:
            _, size = outcome.too_large[0]
            raise DataTooLargeError(event_id, size, self._max_data_bytes)
        return outcome.updated[0] if outcome.updated else None

    async def delete(self, *, event_id: uuid.UUID) -> bool:
        """Delete the event; False when there was no such event."""
        outcome = await self._submit(WriteRequest(deletes=[event_id]))
        return bool(outcome.deleted)

    # Reads.

    async def get(self, *, event_id: uuid.UUID) -> ActivityPublic | None:
        async with self._read() as conn:
            return await reads.get_event(conn, event_id=event_id)

    async def recent(self, *, query: RecentQuery) -> list[ActivityPublic]:
        async with self._read() as conn:
            return await reads.recent(conn, query=query)

    async def recent_page(self, *, query: RecentQuery) -> RecentPage:
        """The recent events and the stream cursor they are consistent with (`reads.recent_page`)."""
        async with self._read() as conn:
            return await reads.recent_page(conn, query=query)

    async def sessions(self, *, limit: int = 50, before: str | None = None) -> list[SessionPublic]:
        """Sessions, most recently active first; `ReferenceNotFoundError` for an unknown `before`."""
        async with self._read() as conn:
            return await list_sessions(conn, limit=limit, before=before)

    async def stats(self, *, since: datetime | None = None) -> list[ToolStats]:
        """Per-tool statistics over every event from `since` on (however many there are)."""
        return (await self.stats_window(since=since)).tools

    async def stats_window(
        self,
        *,
        since: datetime | None = None,
        max_events: int | None = None,
        session_id: str | None = None,
        event_type: EventType | None = None,
    ) -> StatsWindow:
        """Per-tool statistics over the events from `since` on (of one session, of one type), at most the
        newest `max_events` of them, and the window they cover."""
        where = EventFilter(since=since, session_id=session_id, event_type=event_type)
        async with self._read(bulk=True) as conn:
            return await reads.tool_stats(conn, where=where, max_events=max_events)

    async def timeline(self, *, where: EventFilter, until: datetime, max_events: int) -> StatsTimeline:
        """Calls, errors and p50/p95 per time bucket from `where.since` to `until`, over at most the
        newest `max_events` events that match `where`."""
        async with self._read(bulk=True) as conn:
            return await timeline(conn, where=where, until=until, max_events=max_events)

    async def event_counts(self) -> list[EventCount]:
        """The events by type and status: stored now, and ever reached (store/event_counts.py)."""
        async with self._read() as conn:
            return await read_counts(conn)

    def export(self, query: ExportQuery) -> AsyncGenerator[ExportPage, None]:
        """The events matching `query` as JSON lines, oldest first, a page at a time (store/export.py),
        each page read on a connection of the long reads' pool."""
        return export_pages(partial(self._read, bulk=True), query)

    async def last_change(self) -> int:
        async with self._read() as conn:
            return await reads.last_change(conn)

    async def changes_since(self, *, cursor: int, limit: int, origin: int | None = None) -> list[Change]:
        async with self._read() as conn:
            return await reads.changes_since(conn, cursor=cursor, limit=limit, origin=origin)

    async def changes_page(
        self, *, cursor: int, limit: int, max_bytes: int, origin: int | None = None
    ) -> ChangePage:
        """As `changes_since`, for replays: the page also stops once its `data` reach `max_bytes`."""
        async with self._read(bulk=True) as conn:
            return await reads.changes_page(
                conn, cursor=cursor, limit=limit, max_bytes=max_bytes, origin=origin
            )

    async def replay_window(self) -> tuple[int, int]:
        """(floor, head): a cursor below the floor or above the head cannot be replayed."""
        async with self._read() as conn:
            return await reads.replay_window(conn)

    # Starting states for what is then followed live (the alerts, alerts/seed.py).

    async def calls_changed(self, *, after: int, up_to: int) -> list[calls.CallRow]:
        """Events with a tool name whose latest change is numbered in (after, up_to], in change order."""
        async with self._read(bulk=True) as conn:
            return await calls.calls_changed(conn, after=after, up_to=up_to)

    async def pending_calls(self, *, up_to: int, limit: int) -> list[calls.CallRow]:
        """The newest `limit` pending events with a tool name, as of change `up_to`, oldest first."""
        async with self._read(bulk=True) as conn:
            return await calls.pending_calls(conn, up_to=up_to, limit=limit)

    async def newest_named(
        self, *, event_type: EventType, prefix: str, limit: int
    ) -> list[tuple[int, dict[str, Any]]]:
        """(change number, data) of the newest `limit` events of `event_type` whose tool name starts
        with `prefix`, newest first."""
        async with self._read() as conn:
            return await calls.newest_named(conn, event_type=event_type.value, prefix=prefix, limit=limit)

    # For store-layer jobs (`store/maintenance.py`) that choose rows by a query and change them through
    # the writer, so that numbering, tombstones and publishing stay in one place.

    async def submit(self, request: WriteRequest) -> WriteOutcome:
        """Commit `request` through the writer; return what it did."""
        return await self._submit(request)

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read connection (raises `StoreUnavailableError` when the database does not answer)."""
        return self._read()


def _counts(outcome: WriteOutcome) -> BatchResult:
    result = BatchResult(
        created=len(outcome.created),
        existing=len(outcome.existing),
        updated=len(outcome.updated),
        missing=len(outcome.missing),
    )
    # Set only when some update was refused, so the usual answer keeps its four documented counts.
    if outcome.too_large:
        result.too_large = len(outcome.too_large)
    return result
