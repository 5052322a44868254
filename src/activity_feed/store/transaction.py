"""One group-commit transaction: what a write request asks for, what it did, and the statements that do
it, written once as synchronous code for both databases (store/runner.py runs it on each).

Each transaction first locks the change counter row, so change numbers commit in order across processes
and instances; every change it makes takes the next number.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection

from activity_feed.ids import uuid7
from activity_feed.schemas import (
    ENUM_TEXT,
    ActivityCreate,
    ActivityPublic,
    ActivityUpdateItem,
    Change,
    ChangeType,
    EventStatus,
    EventType,
)
from activity_feed.store.event_counts import CountLedger
from activity_feed.store.merge import MergeRequest, merge_events
from activity_feed.store.rows import UPDATED_COLUMNS, CreatedChange, new_row, to_public
from activity_feed.store.schema import activity_change_counter, activity_deletions, activity_events
from activity_feed.store.sessions import SessionLedger
from activity_feed.store.sqlite_rows import (
    SqliteRowDraft,
    SqliteRowWriter,
    complete_row,
    draft_row,
    is_stored_id,
    sqlite_datetime,
)
from activity_feed.store.updates import apply_update, merged_size

# A create waiting for its transaction: the event, its request's outcome, and its SQLite draft if made.
PendingCreate = tuple[ActivityCreate, "WriteOutcome", SqliteRowDraft | None]

_events = activity_events
# Statements are built once: SQLAlchemy memoises a statement's cache key on the object, so a prebuilt
# statement skips rebuilding and re-keying on every transaction of the hot path.
_UPDATE_ROW = (
    sa.update(_events)
    .where(_events.c.id == sa.bindparam("b_id"))
    .values({name: sa.bindparam(f"b_{name}", type_=_events.c[name].type) for name in UPDATED_COLUMNS})
)
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
_UPDATE_KEYS = ("id", *UPDATED_COLUMNS)
_IN_CHUNK = 500
_PENDING = EventStatus.PENDING.value
_TOOL_CALL = EventType.TOOL_CALL.value


class CompletedCall(NamedTuple):
    """A tool call that a transaction finished: it got a final status and a duration."""

    tool_name: str | None
    duration_ms: float


def finished_call(event_type: str, status: str, duration_ms: float | None) -> bool:
    """Whether an event in this state is a tool call that has finished, with its duration."""
    return duration_ms is not None and status != _PENDING and event_type == _TOOL_CALL


@dataclass(slots=True)
class WriteOutcome:
    """What one request did: events created, events that already existed, updated, missing, deleted."""

    created: list[CreatedChange] = field(default_factory=list)
    existing: list[ActivityPublic] = field(default_factory=list)
    updated: list[ActivityPublic] = field(default_factory=list)
    missing: list[uuid.UUID] = field(default_factory=list)
    # Updates not applied because the merged `data` would exceed the limit: (id, merged size in bytes).
    too_large: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    deleted: list[uuid.UUID] = field(default_factory=list)
    tombstones_dropped: int = 0
    # A merge request's items, in order: the id of the event each one ended in, or None (store/merge.py).
    merged: list[uuid.UUID | None] = field(default_factory=list)


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
    merges: MergeRequest | None = None
    # Apply `updates` only to events still `pending`: the pending timeout chooses its events before its
    # request commits, and must not overwrite a completion that committed in between.
    only_pending: bool = False
    # Each part of a merge may be within the per-event limit while the merged whole is not: an update
    # that would grow the stored `data` past `max_data_bytes` is refused (`WriteOutcome.too_large`).
    max_data_bytes: int | None = None
    drop_tombstones: DropTombstones | None = None
    # On SQLite, `creates` drafted when submitted (`draft_row`), one per create, in order.
    sqlite_drafts: Sequence[SqliteRowDraft] = ()
    future: asyncio.Future[WriteOutcome] | None = None
    # Set by the writer when a transaction takes the request, and by `submit` when it gives up waiting
    # for that: a withdrawn request is skipped, so its caller's 503 means that nothing was written.
    taken: bool = False
    withdrawn: bool = False

    @property
    def size(self) -> int:
        dropped = self.drop_tombstones.limit if self.drop_tombstones is not None else 0
        merged = len(self.merges.items) if self.merges is not None else 0
        return len(self.creates) + len(self.updates) + len(self.deletes) + dropped + merged


class _Transaction:
    """The state of one group-commit transaction: the next change number and what changed so far."""

    def __init__(self, conn: Connection, last_seq: int) -> None:
        self.conn = conn
        self.seq = last_seq
        self.now = datetime.now(UTC)
        self.changes: list[Change] = []
        self.sessions = SessionLedger()
        self.counts = CountLedger()
        # Tool calls finished by this transaction (created finished, or changed to finished), for the
        # writer's observer once it commits.
        self.completed: list[CompletedCall] = []
        # The one place the dialects part: SQLite's creates go to the driver directly (store/sqlite_rows.py).
        self.sqlite = SqliteRowWriter(conn) if conn.dialect.name == "sqlite" else None

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

    def create(self, items: Sequence[PendingCreate]) -> None:
        if self.sqlite is not None:
            drafts = [draft or draft_row(item) for item, _, draft in items]
            if not self._insert_all_on_sqlite(self.sqlite, items, drafts):
                self._create_on_sqlite_checking(self.sqlite, items, drafts)
            return
        ids = [item.id or uuid7() for item, _, _ in items]
        stored = self.load([i for (item, _, _), i in zip(items, ids, strict=True) if item.id is not None])
        rows: list[dict[str, Any]] = []
        for (item, outcome, _), event_id in zip(items, ids, strict=True):
            if event_id in stored:
                outcome.existing.append(to_public(stored[event_id]))
                continue
            created = self._created(item, event_id, outcome)
            row = stored[event_id] = new_row(item, event_id, seq=created.seq, now=self.now)
            rows.append(row)
        if rows:
            self.conn.execute(_INSERT_ROWS, rows)

    def _insert_all_on_sqlite(
        self, sqlite: SqliteRowWriter, items: Sequence[PendingCreate], drafts: list[SqliteRowDraft]
    ) -> bool:
        """Insert every event as new; False, with nothing inserted, when an id is stored already.

        Replays are rare, and the unique index on `id` finds them anyway: asking first which ids exist
        would cost every batch a lookup (`bench batch`)."""
        first = self.seq
        now = sqlite_datetime(self.now)
        try:
            sqlite.insert([complete_row(draft, seq=first + n, now=now) for n, draft in enumerate(drafts, 1)])
        except sa.exc.IntegrityError as exc:
            if not is_stored_id(exc):
                raise
            # Earlier statements of this insert may have gone in: the checking way numbers them again.
            sqlite.delete_above(first)
            return False
        for (item, outcome, _), draft in zip(items, drafts, strict=True):
            self._created(item, draft.id, outcome)
        return True

    def _create_on_sqlite_checking(
        self, sqlite: SqliteRowWriter, items: Sequence[PendingCreate], drafts: list[SqliteRowDraft]
    ) -> None:
        """Create the events whose ids are not stored (nor named earlier in `items`)."""
        # Keyed by the ids' hex text, which the draft made already: a UUID hashes in Python code.
        given = [
            draft.id_hex for (item, _, _), draft in zip(items, drafts, strict=True) if item.id is not None
        ]
        stored: dict[str, ActivityPublic | CreatedChange] = {}
        if given:
            found = sqlite.stored(list(dict.fromkeys(given)))
            stored = {event_id.hex: to_public(row) for event_id, row in self.load(found).items()}
        now = sqlite_datetime(self.now)
        rows: list[tuple[Any, ...]] = []
        for (item, outcome, _), draft in zip(items, drafts, strict=True):
            if (existing := stored.get(draft.id_hex)) is not None:
                outcome.existing.append(existing.event if isinstance(existing, CreatedChange) else existing)
                continue
            created = stored[draft.id_hex] = self._created(item, draft.id, outcome)
            rows.append(complete_row(draft, seq=created.seq, now=now))
        if rows:
            sqlite.insert(rows)

    def _created(self, item: ActivityCreate, event_id: uuid.UUID, outcome: WriteOutcome) -> CreatedChange:
        """Number a new event, and record its creation in `outcome` and in the changes."""
        timestamp = item.timestamp or self.now
        created = CreatedChange(self.next_seq(), item, event_id, timestamp)
        outcome.created.append(created)
        self.changes.append(created)
        self.created(item)
        if item.session_id is not None:
            self.sessions.created(
                item.session_id,
                timestamp=timestamp,
                status=ENUM_TEXT[item.status],
                user_source=item.user_source,
                data=item.data,
            )
        return created

    def created(self, event: ActivityCreate) -> None:
        """Count a new event (and the call it finished, if it did)."""
        self.counts.created(event.event_type, event.status)
        if event.duration_ms is not None and finished_call(event.event_type, event.status, event.duration_ms):
            self.completed.append(CompletedCall(event.tool_name, event.duration_ms))

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
                size = merged_size(row, item)
                if size > max_data_bytes:
                    outcome.too_large.append((item.id, size))
                    continue
            status_before, duration_before = row["status"], row["duration_ms"]
            change_type = apply_update(row, item)
            if change_type is not None:
                if row["session_id"] is not None:
                    self.sessions.changed(
                        row["session_id"], before=status_before, after=row["status"], data=item.data
                    )
                self.counted_change(row, status_before=status_before, duration_before=duration_before)
                row["change_seq"] = self.next_seq()
                row["updated_at"] = self.now
                changed[item.id] = row
                self.changes.append(Change(seq=row["change_seq"], type=change_type, event=to_public(row)))
            outcome.updated.append(to_public(row))
        if changed:
            self.conn.execute(
                _UPDATE_ROW,
                [{f"b_{key}": row[key] for key in _UPDATE_KEYS} for row in changed.values()],
            )

    def counted_change(
        self,
        row: dict[str, Any],
        *,
        status_before: str,
        duration_before: float | None,
        type_before: str | None = None,
    ) -> None:
        """Move the counts for a stored event that changed (`row`, as it is now), and note the call it
        finished, if it did."""
        event_type, status = row["event_type"], row["status"]
        type_before = type_before or event_type
        self.counts.moved((type_before, status_before), (event_type, status))
        if finished_call(event_type, status, row["duration_ms"]) and not finished_call(
            type_before, status_before, duration_before
        ):
            self.completed.append(CompletedCall(row["tool_name"], row["duration_ms"]))

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
            if row["session_id"] is not None:
                self.sessions.deleted(row["session_id"], status=row["status"])
            self.counts.deleted(row["event_type"], row["status"])
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


def transact(
    conn: Connection, *, group: Sequence[WriteRequest]
) -> tuple[list[WriteOutcome], list[Change], list[CompletedCall]]:
    """Apply every request of `group`, in order, inside the caller's transaction; return what each did,
    the changes, and the tool calls finished."""
    outcomes = [WriteOutcome() for _ in group]
    last_seq = conn.execute(_LOCK_COUNTER).scalar_one()
    tx = _Transaction(conn, last_seq)
    # Creates of consecutive requests share one INSERT; a request with updates or deletes closes the run
    # first, so each request still sees the effect of every request before it.
    pending: list[PendingCreate] = []
    for request, outcome in zip(group, outcomes, strict=True):
        drafts = request.sqlite_drafts or itertools.repeat(None)
        pending.extend((item, outcome, draft) for item, draft in zip(request.creates, drafts, strict=False))
        if request.updates or request.deletes or request.drop_tombstones or request.merges:
            if pending:
                tx.create(pending)
                pending = []
            if request.merges:
                outcome.merged = merge_events(tx, request.merges)
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
    tx.sessions.write(conn)
    tx.counts.write(conn)
    if tx.seq != last_seq:
        conn.execute(_SET_COUNTER, {"b_value": tx.seq})
    return outcomes, tx.changes, tx.completed
