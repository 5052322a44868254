"""Retention and the pending timeout: jobs that choose events by a query and change them through the
writer, in small batches, once by `activity-feed prune` or periodically inside the service.

Every change goes through the writer (`WriteRequest`), exactly like a DELETE or a PATCH: it gets a change
number, a deletion leaves a tombstone, and each is published after commit, so stream clients that are
connected see `activity_deleted` / `tool_failed` and reconnecting ones replay them. Each batch is its own
request, so ingest waits behind at most one batch, never behind a whole prune.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from activity_feed.durations import format_duration
from activity_feed.errors import StoreUnavailableError
from activity_feed.schemas import ActivityUpdateItem, EventStatus
from activity_feed.store.activity_store import ActivityStore
from activity_feed.store.schema import activity_events
from activity_feed.store.transaction import DropTombstones, WriteRequest
from activity_feed.store.updates import TIMED_OUT_PREFIX

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
_events = activity_events
_OLDEST_FIRST = (_events.c.timestamp, _events.c.seq)
_FIRST_ARRIVED = (_events.c.seq,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """What to delete: events whose timestamp is older than `older_than`, and all but the `keep` that
    arrived last (either or both; `keep=0` deletes every event)."""

    older_than: timedelta | None = None
    keep: int | None = None

    @property
    def enabled(self) -> bool:
        return self.older_than is not None or self.keep is not None


async def prune(
    store: ActivityStore,
    *,
    retention: Retention,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Delete what `retention` says, `batch_size` events per transaction; return how many were deleted.

    The age rule goes by timestamp, oldest first. The count rule goes by arrival (insertion order), first
    arrived first: a client whose clock runs ahead must not push out the events that arrived after it."""
    # The newest event the count rule removes, fixed before anything is deleted, so that events arriving
    # while it runs are never counted against the ones it keeps.
    last_beyond_count = (
        await _last_beyond_count(store, retention.keep) if retention.keep is not None else None
    )
    deleted = 0
    if retention.older_than is not None:
        too_old = _events.c.timestamp < (now or datetime.now(UTC)) - retention.older_than
        deleted += await _delete_in_batches(store, too_old, _OLDEST_FIRST, batch_size)
    if last_beyond_count is not None:
        beyond_count = _events.c.seq <= last_beyond_count
        deleted += await _delete_in_batches(store, beyond_count, _FIRST_ARRIVED, batch_size)
    return deleted


async def _last_beyond_count(store: ActivityStore, keep: int) -> int | None:
    """The `seq` of the newest event beyond the `keep` that arrived last (None: nothing is beyond)."""
    seq = _events.c.seq
    async with store.connect() as conn:
        if conn.dialect.name != "sqlite":
            # A backward walk of the primary key's index, reading only the index.
            stmt = sa.select(seq).order_by(seq.desc()).offset(keep).limit(1)
            return (await conn.execute(stmt)).scalar()
        # SQLite's primary key is the table itself, so that walk would read every kept row whole; a count
        # reads a small index, and the walk then covers only the rows that go. One read transaction, so
        # both see the same events.
        total = (await conn.execute(sa.select(sa.func.count()).select_from(_events))).scalar_one()
        if total <= keep:
            return None
        return (await conn.execute(sa.select(seq).order_by(seq).offset(total - keep - 1).limit(1))).scalar()


async def _delete_in_batches(
    store: ActivityStore,
    condition: sa.ColumnElement[bool],
    order: tuple[sa.ColumnElement[Any], ...],
    batch_size: int,
) -> int:
    # Each rule is one range of an index (the primary key, or the (timestamp, seq) one) walked in its
    # order, so a pass with nothing to delete finds that out at once.
    deleted = 0
    while ids := await _oldest_ids(store, condition, batch_size, order):
        outcome = await store.submit(WriteRequest(deletes=ids))
        deleted += len(outcome.deleted)
        if len(ids) < batch_size:
            break
    return deleted


async def _oldest_ids(
    store: ActivityStore,
    condition: sa.ColumnElement[bool],
    limit: int,
    order: tuple[sa.ColumnElement[Any], ...] = _OLDEST_FIRST,
) -> list[uuid.UUID]:
    stmt = sa.select(_events.c.id).where(condition).order_by(*order).limit(limit)
    async with store.connect() as conn:
        return list((await conn.execute(stmt)).scalars())


async def expire_pending(
    store: ActivityStore,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Mark `error` every `pending` event whose timestamp is older than `older_than`; return how many.

    Each is an ordinary update, so it is published as `tool_failed`; a completion that arrives later is
    a later update and wins (and replaces the timeout's error message)."""
    condition = sa.and_(
        _events.c.status == EventStatus.PENDING.value,
        _events.c.timestamp < (now or datetime.now(UTC)) - older_than,
    )
    message = f"{TIMED_OUT_PREFIX}{format_duration(older_than)} (the pending timeout)"
    expired = 0
    while ids := await _oldest_ids(store, condition, batch_size):
        updates = [ActivityUpdateItem(id=i, status=EventStatus.ERROR, error_message=message) for i in ids]
        outcome = await store.submit(WriteRequest(updates=updates, only_pending=True))
        expired += len(outcome.updated)
        if len(ids) < batch_size:
            break
    return expired


async def drop_tombstones(
    store: ActivityStore, *, keep_changes: int, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Drop the tombstones of deletions more than `keep_changes` changes ago; return how many.

    With `keep_changes` = the replay limit, no replay can need them: a client that far behind gets
    `resync` anyway. The writer raises the replay floor to the newest one dropped, so that stays true
    if the limit is raised later: a cursor below the floor gets `resync`, never a silent gap."""
    _floor, head = await store.replay_window()
    through = head - keep_changes
    dropped = 0
    while through > 0:
        outcome = await store.submit(WriteRequest(drop_tombstones=DropTombstones(through, batch_size)))
        dropped += outcome.tombstones_dropped
        if outcome.tombstones_dropped < batch_size:
            break
    return dropped


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    expired: int
    deleted: int
    tombstones_dropped: int


class Maintenance:
    """The periodic job inside the service: the pending timeout, retention, then old tombstones."""

    def __init__(
        self,
        store: ActivityStore,
        *,
        retention: Retention | None = None,
        pending_timeout: timedelta | None = None,
        keep_changes: int | None = None,
        interval: timedelta = timedelta(seconds=60),
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.store = store
        self.retention = retention or Retention()
        self.pending_timeout = pending_timeout
        self.keep_changes = keep_changes
        self.interval = interval
        self.batch_size = batch_size
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.retention.enabled or self.pending_timeout is not None

    async def run_once(self, *, now: datetime | None = None) -> MaintenanceReport:
        """One pass of every job that is turned on."""
        now = now or datetime.now(UTC)
        expired = deleted = dropped = 0
        if self.pending_timeout is not None:
            expired = await expire_pending(
                self.store, older_than=self.pending_timeout, now=now, batch_size=self.batch_size
            )
        if self.retention.enabled:
            deleted = await prune(self.store, retention=self.retention, now=now, batch_size=self.batch_size)
        if self.keep_changes is not None:
            dropped = await drop_tombstones(
                self.store, keep_changes=self.keep_changes, batch_size=self.batch_size
            )
        return MaintenanceReport(expired=expired, deleted=deleted, tombstones_dropped=dropped)

    def start(self) -> None:
        """Run a pass every `interval` (the first after one interval), when any job is turned on."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="activity-feed-maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval.total_seconds())
            try:
                report = await self.run_once()
            except StoreUnavailableError as exc:
                log.warning("maintenance skipped, next try in %s: %s", format_duration(self.interval), exc)
                continue
            except Exception:  # boundary: a failed pass must not end the job; the next one retries
                log.exception("maintenance pass failed")
                continue
            if report.expired or report.deleted:
                log.info(
                    "maintenance: %d pending events timed out, %d events deleted by retention",
                    report.expired,
                    report.deleted,
                )
