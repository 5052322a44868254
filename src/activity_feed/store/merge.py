"""Events that may be a second view of one already stored: created where nothing is yet, merged into the
stored event where it is another view of the same thing.

Two records of one happening can arrive in any order, in one request or in two, at one instance or at two
sharing a database: a client's and a server's record of one call, or the same record sent again. Each
names the places its event may be (`MergeItem`: ids derived from what both views know), and the caller's
`combine` decides whether a stored event and the incoming one are views of the same thing, and what the
two make together. It runs inside the write transaction, which holds the change counter's lock, so two
instances never both create at one place, and the views are merged whichever arrived first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from activity_feed.schemas import ActivityCreate, ActivityPublic, Change
from activity_feed.store.rows import PUBLIC_COLUMNS, CreatedChange, new_public, new_row, to_public
from activity_feed.store.schema import activity_events
from activity_feed.store.sessions import SessionLedger
from activity_feed.store.sqlite_rows import SqliteRowWriter, complete_row, draft_row, sqlite_datetime
from activity_feed.store.updates import change_type

# The stored event and the incoming view: the whole merged event, or None when they are not views of the
# same thing (the item then tries its next place). Given a view it already holds, it returns the event
# unchanged, so that a record sent again changes nothing.
Combine = Callable[[ActivityPublic, ActivityCreate], ActivityCreate | None]

_events = activity_events
# What a merge may change: every column of the event but its id (a view may start earlier, know the
# client or the session).
_MERGED_COLUMNS = (*PUBLIC_COLUMNS[1:], "updated_at", "change_seq")
_UPDATE_MERGED = (
    sa.update(_events)
    .where(_events.c.id == sa.bindparam("b_id"))
    .values({name: sa.bindparam(f"b_{name}", type_=_events.c[name].type) for name in _MERGED_COLUMNS})
)


@dataclass(frozen=True, slots=True)
class MergeItem:
    """An incoming view: `event` (whose `id` is the first place to look) and further places, in order."""

    event: ActivityCreate
    fallbacks: tuple[uuid.UUID, ...] = ()

    @property
    def places(self) -> tuple[uuid.UUID, ...]:
        first = self.event.id
        return self.fallbacks if first is None else (first, *self.fallbacks)


@dataclass(frozen=True, slots=True)
class MergeRequest:
    items: Sequence[MergeItem]
    combine: Combine
    # A merged `data` over this size is not stored (the item counts as not placed); None: no limit.
    max_data_bytes: int | None = None


class MergeTransaction(Protocol):
    """What a merge needs of the write transaction it runs in (store/transaction.py)."""

    conn: Connection
    now: datetime
    changes: list[Change]
    sessions: SessionLedger
    sqlite: SqliteRowWriter | None

    def next_seq(self) -> int: ...
    def load(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]: ...
    def created(self, event: ActivityCreate) -> None: ...
    def counted_change(
        self,
        row: dict[str, Any],
        *,
        status_before: str,
        duration_before: float | None,
        type_before: str | None = None,
    ) -> None: ...


class _Merge:
    """One merge request's events while it runs: the new ones (made whole at the end) and the stored
    ones it changed (as rows, with what they held before)."""

    def __init__(self, tx: MergeTransaction, request: MergeRequest) -> None:
        self.tx = tx
        self.request = request
        self.new: dict[uuid.UUID, tuple[ActivityCreate, int]] = {}
        self.rows = self._stored(request.items)
        self.before = {event_id: dict(row) for event_id, row in self.rows.items()}

    def _stored(self, items: Sequence[MergeItem]) -> dict[uuid.UUID, dict[str, Any]]:
        places = list(dict.fromkeys(place for item in items for place in item.places))
        sqlite = self.tx.sqlite
        if sqlite is not None:
            # Asked with the driver first: almost every place is free, and loading none costs nothing.
            places = sqlite.stored([place.hex for place in places])
            if not places:
                return {}
        return self.tx.load(places)

    def current(self, place: uuid.UUID) -> ActivityPublic | None:
        if (made := self.new.get(place)) is not None:
            event, _ = made
            return new_public(event, place, event.timestamp or self.tx.now)
        row = self.rows.get(place)
        return None if row is None else to_public(row)

    def place(self, item: MergeItem) -> uuid.UUID | None:
        """Where `item` ends: merged into the first event it is another view of, else created at its
        first free place; None when every place holds something else."""
        places = item.places
        for place in places:
            current = self.current(place)
            if current is None:
                continue
            merged = self.request.combine(current, _at(item.event, place))
            if merged is not None and self._fits(merged):
                self._set(place, merged)
                return place
        for place in places:
            if self.current(place) is None:
                self.new[place] = (_at(item.event, place), self.tx.next_seq())
                return place
        return None

    def _fits(self, event: ActivityCreate) -> bool:
        limit = self.request.max_data_bytes
        return limit is None or len(orjson.dumps(event.data)) <= limit

    def _set(self, place: uuid.UUID, event: ActivityCreate) -> None:
        if place in self.new:
            _, seq = self.new[place]
            self.new[place] = (_at(event, place), seq)
            return
        row = self.rows[place]
        for name in PUBLIC_COLUMNS[1:]:
            row[name] = getattr(event, name)
        row["timestamp"] = event.timestamp or row["timestamp"]
        row["event_type"] = event.event_type.value
        row["status"] = event.status.value

    def write(self) -> None:
        """Insert the new events and update the changed ones, each with its change, in number order."""
        tx = self.tx
        if self.new:
            self._insert()
        updates = []
        for event_id, row in self.rows.items():
            before = self.before[event_id]
            if all(row[name] == before[name] for name in PUBLIC_COLUMNS):
                continue
            row["change_seq"] = tx.next_seq()
            row["updated_at"] = tx.now
            updates.append({f"b_{name}": row[name] for name in ("id", *_MERGED_COLUMNS)})
            self._tally_change(before, row)
            tx.counted_change(
                row,
                status_before=before["status"],
                duration_before=before["duration_ms"],
                type_before=before["event_type"],
            )
            kind = change_type(before["status"], row["status"])
            tx.changes.append(Change(seq=row["change_seq"], type=kind, event=to_public(row)))
        if updates:
            tx.conn.execute(_UPDATE_MERGED, updates)

    def _insert(self) -> None:
        tx = self.tx
        made = sorted(self.new.items(), key=lambda entry: entry[1][1])
        for event_id, (event, seq) in made:
            timestamp = event.timestamp or tx.now
            tx.changes.append(CreatedChange(seq, event, event_id, timestamp))
            tx.created(event)
            if event.session_id is not None:
                tx.sessions.created(
                    event.session_id,
                    timestamp=timestamp,
                    status=event.status.value,
                    user_source=event.user_source,
                    data=event.data,
                )
        if tx.sqlite is not None:
            now = sqlite_datetime(tx.now)
            tx.sqlite.insert([complete_row(draft_row(event), seq=seq, now=now) for _, (event, seq) in made])
        else:
            rows = [new_row(event, event_id, seq=seq, now=tx.now) for event_id, (event, seq) in made]
            tx.conn.execute(sa.insert(_events), rows)

    def _tally_change(self, before: dict[str, Any], row: dict[str, Any]) -> None:
        sessions = self.tx.sessions
        old, new = before["session_id"], row["session_id"]
        if old == new:
            if new is not None:
                sessions.changed(new, before=before["status"], after=row["status"], data=row["data"])
                if row["timestamp"] != before["timestamp"]:
                    sessions.moved(new)
            return
        if old is not None:
            sessions.deleted(old, status=before["status"])
        if new is not None:
            sessions.created(
                new,
                timestamp=row["timestamp"],
                status=row["status"],
                user_source=row["user_source"],
                data=row["data"],
            )


def _at(event: ActivityCreate, place: uuid.UUID) -> ActivityCreate:
    return event if event.id == place else event.model_copy(update={"id": place})


def merge_events(tx: MergeTransaction, request: MergeRequest) -> list[uuid.UUID | None]:
    """Place every item of `request` (store/transaction.py calls this inside its transaction); return the
    id of the event each one ended in, or None for an item that found no place."""
    merge = _Merge(tx, request)
    places = [merge.place(item) for item in request.items]
    merge.write()
    return places
