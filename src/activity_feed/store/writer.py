"""The single writer: every change goes through one task that commits many requests per transaction.

Group commit is what lets durable commits (an fsync per transaction on SQLite) keep up with many
concurrent clients: while one transaction commits, the next requests queue, and the following
transaction takes them all. Each transaction first locks the change counter row, so change numbers
commit in order across processes and instances, and then publishes its changes, in order, after commit.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from activity_feed.errors import StoreUnavailableError
from activity_feed.ids import uuid7
from activity_feed.schemas import (
    ENUM_TEXT,
    ActivityCreate,
    ActivityPublic,
    ActivityUpdate,
    ActivityUpdateItem,
    Change,
    ChangeType,
    EventStatus,
)
from activity_feed.store.engine import failure_reason, is_unavailable
from activity_feed.store.rows import (
    SQLITE_COLUMNS,
    SQLITE_INSERT,
    SqliteText,
    new_public,
    sqlite_datetime,
    sqlite_ids_present,
    sqlite_insert_rows,
    sqlite_row,
    sqlite_text,
    to_public,
)
from activity_feed.store.runner import TransactionRunner
from activity_feed.store.schema import activity_change_counter, activity_deletions, activity_events

log = logging.getLogger(__name__)

OnCommit = Callable[[Sequence[Change]], None]
# A create waiting for its transaction: the event, its request's outcome, and its SQLite encoding if made.
PendingCreate = tuple[ActivityCreate, "WriteOutcome", SqliteText | None]

_events = activity_events
_UPDATE_ROW = (
    sa.update(_events)
    .where(_events.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        duration_ms=sa.bindparam("b_duration_ms"),
        error_message=sa.bindparam("b_error_message"),
        data=sa.bindparam("b_data", type_=_events.c.data.type),
        updated_at=sa.bindparam("b_updated_at", type_=_events.c.updated_at.type),
        change_seq=sa.bindparam("b_change_seq"),
    )
)
# Statements are built once: SQLAlchemy memoises a statement's cache key on the object, so a prebuilt
# statement skips rebuilding and re-keying on every transaction of the hot path.
_LOCK_COUNTER = (
    sa.select(activity_change_counter.c.value).where(activity_change_counter.c.id == 1).with_for_update()
)
_SET_COUNTER = (
    sa.update(activity_change_counter)
    .where(activity_change_counter.c.id == 1)
    .values(value=sa.bindparam("b_value"))
)
_LOAD_ROWS = sa.select(_events).where(_events.c.id.in_(sa.bindparam("b_ids", expanding=True)))
_INSERT_ROWS = sa.insert(_events)
_DELETE_ROWS = sa.delete(_events).where(_events.c.id.in_(sa.bindparam("b_ids", expanding=True)))
_INSERT_TOMBSTONES = sa.insert(activity_deletions)
_OLDEST_TOMBSTONES = (
    sa.select(activity_deletions.c.change_seq)
    .where(activity_deletions.c.change_seq <= sa.bindparam("b_through"))
    .order_by(activity_deletions.c.change_seq)
    .limit(sa.bindparam("b_limit"))
)
_DROP_TOMBSTONES = sa.delete(activity_deletions).where(
    activity_deletions.c.change_seq <= sa.bindparam("b_through")
)
# Tombstones go oldest first, so the newest one dropped is always above the floor so far: plain SET
# raises it, with no dialect's GREATEST/MAX needed.
_RAISE_REPLAY_FLOOR = (
    sa.update(activity_change_counter)
    .where(activity_change_counter.c.id == 1)
    .values(replay_floor=sa.bindparam("b_floor"))
)
_IN_CHUNK = 500
_SQLITE_DELETE_ABOVE = f"DELETE FROM {_events.name} WHERE seq > ?"
_SQLITE_ROWS_ONE_BY_ONE = 64  # up to this many rows, SQLite's insert is one executemany
_SQLITE_MOST_ROWS_PER_STATEMENT = 2048

# How the pending timeout (store/maintenance.py) words its error. A completion that arrives later wins:
# it replaces this message instead of leaving "no completion arrived" on a call that succeeded.
TIMED_OUT_PREFIX = "no completion arrived within "


class Created(Change):
    """The change that created an event, whose public form (`event`) is made on first use.

    A batch's creates are only counted, and published to a bus that may have no client to send them to,
    so most are never asked for. Made in the transaction, on the writer's thread (the batch path's
    bottleneck), they took a sixth of its time under `bench batch`."""

    __slots__ = ("_id", "_item", "_public", "_timestamp")

    def __init__(self, seq: int, item: ActivityCreate, event_id: uuid.UUID, timestamp: datetime) -> None:
        self.seq = seq
        self.type = ChangeType.LOGGED
        self._item = item
        self._id = event_id
        self._timestamp = timestamp
        self._public: ActivityPublic | None = None

    @property
    def event(self) -> ActivityPublic:
        public = self._public
        if public is None:
            public = self._public = new_public(self._item, self._id, self._timestamp)
        return public


@dataclass(slots=True)
class WriteOutcome:
    """What one request did: events created, events that already existed, updated, missing, deleted."""

    created: list[Created] = field(default_factory=list)
    existing: list[ActivityPublic] = field(default_factory=list)
    updated: list[ActivityPublic] = field(default_factory=list)
    missing: list[uuid.UUID] = field(default_factory=list)
    # Updates not applied because the merged `data` would exceed the limit: (id, merged size in bytes).
    too_large: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    deleted: list[uuid.UUID] = field(default_factory=list)
    tombstones_dropped: int = 0


@dataclass(frozen=True, slots=True)
class DropTombstones:
    """Drop up to `limit` of the oldest tombstones numbered at most `through`, and raise the replay floor
    to the newest one dropped, so that cursors from before it get `resync` instead of a silent gap."""

    through: int
    limit: int


@dataclass(slots=True)
class WriteRequest:
    creates: Sequence[ActivityCreate] = ()
    updates: Sequence[ActivityUpdateItem] = ()
    deletes: Sequence[uuid.UUID] = ()
    # Apply `updates` only to events still `pending`: the pending timeout chooses its events before its
    # request commits, and must not overwrite a completion that committed in between.
    only_pending: bool = False
    # Each part of a merge may be within the per-event limit while the merged whole is not: an update
    # that would grow the stored `data` past `max_data_bytes` is refused (`WriteOutcome.too_large`).
    max_data_bytes: int | None = None
    drop_tombstones: DropTombstones | None = None
    # On SQLite, `creates` encoded when submitted (`sqlite_text`), one per create, in order.
    sqlite_texts: Sequence[SqliteText] = ()
    future: asyncio.Future[WriteOutcome] | None = None
    # Set by the writer when a transaction takes the request, and by `submit` when it gives up waiting
    # for that: a withdrawn request is skipped, so its caller's 503 means that nothing was written.
    taken: bool = False
    withdrawn: bool = False

    @property
    def size(self) -> int:
        dropped = self.drop_tombstones.limit if self.drop_tombstones is not None else 0
        return len(self.creates) + len(self.updates) + len(self.deletes) + dropped


def _is_stored_id(exc: sa.exc.IntegrityError) -> bool:
    """Whether SQLite refused a row because its `id` is stored already (or was inserted just before)."""
    original = exc.orig
    return getattr(original, "sqlite_errorname", None) == "SQLITE_CONSTRAINT_UNIQUE" and str(
        original
    ).endswith(f"{_events.name}.id")


def _merged_size(row: dict[str, Any], update: ActivityUpdate) -> int:
    return len(orjson.dumps({**row["data"], **(update.data or {})}))


def _apply_update(row: dict[str, Any], update: ActivityUpdate) -> ChangeType | None:
    """Apply `update` to `row` in place; return the change's type, or None when nothing changed."""
    before = (row["status"], row["duration_ms"], row["error_message"], row["data"])
    if update.status is not None:
        row["status"] = update.status.value
    if update.duration_ms is not None:
        row["duration_ms"] = update.duration_ms
    if update.error_message is not None:
        row["error_message"] = update.error_message
    elif update.status == EventStatus.SUCCESS and (row["error_message"] or "").startswith(TIMED_OUT_PREFIX):
        row["error_message"] = None
    if update.data:
        row["data"] = {**row["data"], **update.data}
    if (row["status"], row["duration_ms"], row["error_message"], row["data"]) == before:
        return None
    if row["status"] != before[0]:
        if row["status"] == EventStatus.SUCCESS:
            return ChangeType.COMPLETED
        if row["status"] == EventStatus.ERROR:
            return ChangeType.FAILED
    return ChangeType.UPDATED


class _Transaction:
    """The state of one group-commit transaction: the next change number and what changed so far."""

    def __init__(self, conn: Connection, last_seq: int) -> None:
        self.conn = conn
        self.seq = last_seq
        self.now = datetime.now(UTC)
        self.changes: list[Change] = []
        self.on_sqlite = conn.dialect.name == "sqlite"

    def _insert_on_sqlite(self, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) <= _SQLITE_ROWS_ONE_BY_ONE:
            self.conn.exec_driver_sql(SQLITE_INSERT, rows)
            return
        # A large insert (a batch, on the writer's thread) goes many rows per statement, in chunks of
        # powers of two (a few distinct statements, which the driver keeps prepared). Each statement
        # hands the interpreter lock to the event loop's thread while SQLite works, and waits for it
        # back, up to the switch interval (5 ms) when the loop is busy: executemany would do that once a
        # row, and even 256 rows a statement left a fifth of the writer's time in those waits.
        largest = self._sqlite_rows_per_statement()
        start = 0
        while start < len(rows):
            count = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
            values = tuple(itertools.chain.from_iterable(rows[start : start + count]))
            self.conn.exec_driver_sql(sqlite_insert_rows(count), values)
            start += count

    def _sqlite_parameter_limit(self) -> int:
        # SQLite caps the parameters of one statement: 32,766 since 3.32, 999 before.
        driver = self.conn.connection.dbapi_connection
        return driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if driver is not None else 999

    def _sqlite_rows_per_statement(self) -> int:
        # The largest power of two of whole rows under the cap, and at most 2,048 (a whole group).
        rows = max(
            1, min(_SQLITE_MOST_ROWS_PER_STATEMENT, self._sqlite_parameter_limit() // len(SQLITE_COLUMNS))
        )
        return 1 << (rows.bit_length() - 1)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def load(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        found: dict[uuid.UUID, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            result = self.conn.execute(_LOAD_ROWS, {"b_ids": chunk})
            for row in result.mappings():
                found[row["id"]] = dict(row)
        return found

    def _stored_on_sqlite(self, ids: list[str]) -> list[uuid.UUID]:
        # Which of the ids creates name exist, asked with the driver's own values (a FeedClient gives
        # every event its id, so a batch asks about 1,000): SQLAlchemy's expanding IN compiles the
        # statement and binds every id, 1.13 ms of the writer's thread per 1,000 absent ids against 0.53
        # here. Whole rows are then loaded for the ids found, which are few: replays.
        # As few statements as the parameter cap allows, for the interpreter lock's sake (see
        # `_insert_on_sqlite`), each padded to a power of two (the last id again) so that few distinct
        # statements are ever prepared.
        stored: list[uuid.UUID] = []
        per_statement = self._sqlite_parameter_limit()
        for start in range(0, len(ids), per_statement):
            chunk = ids[start : start + per_statement]
            size = min(per_statement, 1 << (len(chunk) - 1).bit_length())
            chunk += [chunk[-1]] * (size - len(chunk))
            result = self.conn.exec_driver_sql(sqlite_ids_present(size), tuple(chunk))
            stored.extend(uuid.UUID(hex=found) for (found,) in result)
        return stored

    def create(self, items: Sequence[PendingCreate]) -> None:
        if self.on_sqlite:
            self._create_on_sqlite(items)
            return
        ids = [item.id or uuid7() for item, _, _ in items]
        stored = self.load([i for (item, _, _), i in zip(items, ids, strict=True) if item.id is not None])
        rows: list[dict[str, Any]] = []
        for (item, outcome, _), event_id in zip(items, ids, strict=True):
            if event_id in stored:
                outcome.existing.append(to_public(stored[event_id]))
                continue
            created = self._created(item, event_id, outcome)
            row = stored[event_id] = {
                "seq": created.seq,
                "id": event_id,
                "timestamp": item.timestamp or self.now,
                "tool_name": item.tool_name,
                "user_source": item.user_source,
                "event_type": ENUM_TEXT[item.event_type],
                "status": ENUM_TEXT[item.status],
                "data": item.data,
                "duration_ms": item.duration_ms,
                "error_message": item.error_message,
                "correlation_id": item.correlation_id,
                "updated_at": self.now,
                "change_seq": created.seq,
            }
            rows.append(row)
        if rows:
            self.conn.execute(_INSERT_ROWS, rows)

    def _create_on_sqlite(self, items: Sequence[PendingCreate]) -> None:
        texts = [text or sqlite_text(item) for item, _, text in items]
        if not self._insert_all_on_sqlite(items, texts):
            self._create_on_sqlite_checking(items, texts)

    def _insert_all_on_sqlite(self, items: Sequence[PendingCreate], texts: list[SqliteText]) -> bool:
        """Insert every event as new; False, with nothing inserted, when an id is stored already.

        Replays are rare, and the unique index on `id` finds them anyway: asking first which ids exist
        took the writer's thread 5 ms of a 40 ms transaction of 2,000 events under `bench batch`."""
        first = self.seq
        now = sqlite_datetime(self.now)
        try:
            self._insert_on_sqlite(
                [sqlite_row(text, seq=first + n, now=now) for n, text in enumerate(texts, start=1)]
            )
        except sa.exc.IntegrityError as exc:
            if not _is_stored_id(exc):
                raise
            # Earlier statements of this insert may have gone in: these are the only rows numbered
            # above `first` (the change counter is locked), and the checking way numbers them again.
            self.conn.exec_driver_sql(_SQLITE_DELETE_ABOVE, (first,))
            return False
        for (item, outcome, _), text in zip(items, texts, strict=True):
            self._created(item, text.id, outcome)
        return True

    def _create_on_sqlite_checking(self, items: Sequence[PendingCreate], texts: list[SqliteText]) -> None:
        """Create the events whose ids are not stored (nor named earlier in `items`)."""
        # Keyed by the ids' hex text, which the encoding made already: a UUID hashes in Python code.
        given = [text.id_hex for (item, _, _), text in zip(items, texts, strict=True) if item.id is not None]
        stored: dict[str, ActivityPublic | Created] = {}
        if given:
            found = self._stored_on_sqlite(list(dict.fromkeys(given)))
            stored = {event_id.hex: to_public(row) for event_id, row in self.load(found).items()}
        now = sqlite_datetime(self.now)
        rows: list[tuple[Any, ...]] = []
        for (item, outcome, _), text in zip(items, texts, strict=True):
            id_hex = text.id_hex
            if (existing := stored.get(id_hex)) is not None:
                outcome.existing.append(existing.event if isinstance(existing, Created) else existing)
                continue
            created = stored[id_hex] = self._created(item, text.id, outcome)
            rows.append(sqlite_row(text, seq=created.seq, now=now))
        if rows:
            self._insert_on_sqlite(rows)

    def _created(self, item: ActivityCreate, event_id: uuid.UUID, outcome: WriteOutcome) -> Created:
        """Number a new event, and record its creation in `outcome` and in the changes."""
        created = Created(self.next_seq(), item, event_id, item.timestamp or self.now)
        outcome.created.append(created)
        self.changes.append(created)
        return created

    def update(
        self,
        items: Sequence[ActivityUpdateItem],
        outcome: WriteOutcome,
        *,
        only_pending: bool = False,
        max_data_bytes: int | None = None,
    ) -> None:
        stored = self.load([item.id for item in items])
        changed: dict[uuid.UUID, dict[str, Any]] = {}
        for item in items:
            row = stored.get(item.id)
            if row is None:
                outcome.missing.append(item.id)
                continue
            if only_pending and row["status"] != EventStatus.PENDING:
                continue
            if max_data_bytes is not None and item.data and row["data"]:
                size = _merged_size(row, item)
                if size > max_data_bytes:
                    outcome.too_large.append((item.id, size))
                    continue
            change_type = _apply_update(row, item)
            if change_type is not None:
                row["change_seq"] = self.next_seq()
                row["updated_at"] = self.now
                changed[item.id] = row
                self.changes.append(Change(seq=row["change_seq"], type=change_type, event=to_public(row)))
            outcome.updated.append(to_public(row))
        if changed:
            self.conn.execute(
                _UPDATE_ROW,
                [{f"b_{key}": row[key] for key in _UPDATED_KEYS} for row in changed.values()],
            )

    def delete(self, ids: Sequence[uuid.UUID], outcome: WriteOutcome) -> None:
        stored = self.load(ids)
        if not stored:
            outcome.missing.extend(ids)
            return
        tombstones = []
        for event_id in ids:
            row = stored.pop(event_id, None)
            if row is None:
                outcome.missing.append(event_id)
                continue
            seq = self.next_seq()
            tombstones.append({"change_seq": seq, "id": event_id, "deleted_at": self.now})
            outcome.deleted.append(event_id)
            self.changes.append(Change(seq=seq, type=ChangeType.DELETED, event=to_public(row)))
        self.conn.execute(_DELETE_ROWS, {"b_ids": outcome.deleted})
        self.conn.execute(_INSERT_TOMBSTONES, tombstones)

    def drop_tombstones(self, request: DropTombstones, outcome: WriteOutcome) -> None:
        seqs = self.conn.execute(
            _OLDEST_TOMBSTONES, {"b_through": request.through, "b_limit": request.limit}
        ).scalars()
        newest = max(seqs, default=None)
        if newest is None:
            return
        result = self.conn.execute(_DROP_TOMBSTONES, {"b_through": newest})
        outcome.tombstones_dropped += result.rowcount
        self.conn.execute(_RAISE_REPLAY_FLOOR, {"b_floor": newest})


_UPDATED_KEYS = ("id", "status", "duration_ms", "error_message", "data", "updated_at", "change_seq")


class GroupCommitWriter:
    """Queues write requests and commits them in groups of up to `batch_size` items per transaction."""

    def __init__(
        self,
        run: TransactionRunner,
        *,
        on_commit: OnCommit | None = None,
        batch_size: int = 2000,
        queue_timeout: float | None = None,
        encode_for_sqlite: bool = False,
    ):
        self._run_transaction = run
        self._encode_for_sqlite = encode_for_sqlite
        self._on_commit = on_commit
        self._batch_size = batch_size
        self._queue_timeout = queue_timeout
        self._queue: asyncio.Queue[WriteRequest] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="activity-feed-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def submit(self, request: WriteRequest) -> WriteOutcome:
        """Queue `request` and wait until it is committed (or has failed).

        With a `queue_timeout`, a request that no transaction has taken by then is withdrawn and fails
        with `StoreUnavailableError`: the transaction ahead of it is waiting on a database that does not
        answer, and its caller gets a prompt 503 (with nothing written) rather than waiting its turn
        behind it. A request already in a transaction is waited for: the driver's timeouts bound it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteOutcome] = loop.create_future()
        request.future = future
        if self._encode_for_sqlite and request.creates and not request.sqlite_texts:
            request.sqlite_texts = [sqlite_text(item) for item in request.creates]
        self._queue.put_nowait(request)
        if self._queue_timeout is None:
            return await future
        # A timer rather than asyncio.wait(): this runs for every request, and a timer handle costs less
        # than half as much (about 3 against 7 µs).
        timer = loop.call_later(self._queue_timeout, self._withdraw_if_waiting, request)
        try:
            return await future
        finally:
            timer.cancel()

    def _withdraw_if_waiting(self, request: WriteRequest) -> None:
        future = request.future
        if request.taken or future is None or future.done():
            return
        request.withdrawn = True
        reason = f"database unavailable: no write committed within {self._queue_timeout:g} s"
        future.set_exception(StoreUnavailableError(reason))

    async def _run(self) -> None:
        while True:
            group: list[WriteRequest] = []
            size = 0
            request = await self._queue.get()
            while True:
                if request.withdrawn:
                    self._queue.task_done()
                else:
                    request.taken = True
                    group.append(request)
                    size += request.size
                if size >= self._batch_size or self._queue.empty():
                    break
                request = self._queue.get_nowait()
            if not group:
                continue
            try:
                await self._commit(group)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit(self, group: list[WriteRequest]) -> None:
        try:
            outcomes, changes = await self._transact(group)
        except Exception as exc:  # boundary: every failure must reach the waiting requests, never the loop
            if len(group) > 1 and not is_unavailable(exc):
                # One bad request must not fail the others that happened to share its transaction.
                for request in group:
                    await self._commit([request])
                return
            error: Exception = exc
            if is_unavailable(exc):
                error = StoreUnavailableError(f"database unavailable: {failure_reason(exc)}")
            for request in group:
                if request.future is not None and not request.future.done():
                    request.future.set_exception(error)
            return
        for request, outcome in zip(group, outcomes, strict=True):
            if request.future is not None and not request.future.done():
                request.future.set_result(outcome)
        if changes and self._on_commit is not None:
            try:
                self._on_commit(changes)
            except Exception:  # boundary: a failing listener must not stop the writer
                log.exception("publishing committed changes failed")

    async def _transact(self, group: list[WriteRequest]) -> tuple[list[WriteOutcome], list[Change]]:
        items = sum(request.size for request in group)
        return await self._run_transaction(partial(transact, group=group), items=items)


def transact(conn: Connection, *, group: Sequence[WriteRequest]) -> tuple[list[WriteOutcome], list[Change]]:
    """Apply every request of `group`, in order, inside the caller's transaction."""
    outcomes = [WriteOutcome() for _ in group]
    last_seq = conn.execute(_LOCK_COUNTER).scalar_one()
    tx = _Transaction(conn, last_seq)
    # Creates of consecutive requests share one INSERT; a request with updates or deletes closes the run
    # first, so each request still sees the effect of every request before it.
    pending: list[PendingCreate] = []
    for request, outcome in zip(group, outcomes, strict=True):
        texts = request.sqlite_texts or itertools.repeat(None)
        pending.extend((item, outcome, text) for item, text in zip(request.creates, texts, strict=False))
        if request.updates or request.deletes or request.drop_tombstones:
            if pending:
                tx.create(pending)
                pending = []
            if request.updates:
                tx.update(
                    request.updates,
                    outcome,
                    only_pending=request.only_pending,
                    max_data_bytes=request.max_data_bytes,
                )
            if request.deletes:
                tx.delete(request.deletes, outcome)
            if request.drop_tombstones:
                tx.drop_tombstones(request.drop_tombstones, outcome)
    if pending:
        tx.create(pending)
    if tx.seq != last_seq:
        conn.execute(_SET_COUNTER, {"b_value": tx.seq})
    return outcomes, tx.changes


__all__ = [
    "TIMED_OUT_PREFIX",
    "DropTombstones",
    "GroupCommitWriter",
    "OnCommit",
    "WriteOutcome",
    "WriteRequest",
]
