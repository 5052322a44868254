"""The per-session summary (`activity_sessions`): kept by the write transactions, read by the session list.

Each write transaction tallies what it does to events that belong to a session (created, status changed,
deleted) and writes the tallies at its end, one statement per kind of change for all its sessions. The
counts move by deltas, so a long-lived session costs the same as a short one; only a deletion looks at
the events again (as does a merge that moves an event in time), to move `first_seen` and `last_seen`
along the session index. Every write transaction
holds the change counter's lock, so instances sharing one PostgreSQL take turns here as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from activity_feed.errors import ReferenceNotFoundError
from activity_feed.schemas import MAX_TEXT, EventStatus, SessionPublic
from activity_feed.store.schema import activity_events, activity_sessions

_sessions = activity_sessions
_events = activity_events
_ERROR = EventStatus.ERROR.value
_PENDING = EventStatus.PENDING.value


def server_name(data: Mapping[str, Any] | None) -> str | None:
    """`data.mcp.server.name`, when the event carries one (cut to the column's length)."""
    mcp = data.get("mcp") if data else None
    server = mcp.get("server") if isinstance(mcp, dict) else None
    name = server.get("name") if isinstance(server, dict) else None
    return name[:MAX_TEXT] if isinstance(name, str) else None


@dataclass(slots=True)
class _Tally:
    """What one transaction did to one session: counts to add (negative for deletions), and the
    timestamps and names of the events it created."""

    events: int = 0
    errors: int = 0
    pending: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    user_source: str | None = None
    server: str | None = None
    # An event left the session or moved in time: its bounds are read again from its events.
    bounds_moved: bool = False

    def count(self, status: str, sign: int) -> None:
        if status == _ERROR:
            self.errors += sign
        elif status == _PENDING:
            self.pending += sign


def _upsert(dialect: str) -> sa.Insert:
    insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(_sessions)
    earliest, latest = (
        (sa.func.min, sa.func.max) if dialect == "sqlite" else (sa.func.least, sa.func.greatest)
    )
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[_sessions.c.session_id],
        set_={
            "first_seen": earliest(_sessions.c.first_seen, new.first_seen),
            "last_seen": latest(_sessions.c.last_seen, new.last_seen),
            # The latest name given wins; an event without one leaves the name as it was.
            "user_source": sa.func.coalesce(new.user_source, _sessions.c.user_source),
            "server": sa.func.coalesce(new.server, _sessions.c.server),
            "events": _sessions.c.events + new.events,
            "errors": _sessions.c.errors + new.errors,
            "pending": _sessions.c.pending + new.pending,
        },
    )


_UPSERTS = {name: _upsert(name) for name in ("sqlite", "postgresql")}
_ADD_COUNTS = (
    sa.update(_sessions)
    .where(_sessions.c.session_id == sa.bindparam("b_session_id"))
    .values(
        events=_sessions.c.events + sa.bindparam("b_events"),
        errors=_sessions.c.errors + sa.bindparam("b_errors"),
        pending=_sessions.c.pending + sa.bindparam("b_pending"),
        server=sa.func.coalesce(sa.bindparam("b_server", type_=sa.String()), _sessions.c.server),
    )
)


def _bound(aggregate: Any) -> sa.ScalarSelect[Any]:
    """The session's oldest or newest event timestamp, read from the end of its index range."""
    return (
        sa.select(aggregate(_events.c.timestamp))
        .where(_events.c.session_id == _sessions.c.session_id)
        .scalar_subquery()
    )


_SESSIONS_IN = _sessions.c.session_id.in_(sa.bindparam("b_ids", expanding=True))
_MOVE_BOUNDS = (
    sa.update(_sessions)
    .where(_SESSIONS_IN)
    .values(
        first_seen=sa.func.coalesce(_bound(sa.func.min), _sessions.c.first_seen),
        last_seen=sa.func.coalesce(_bound(sa.func.max), _sessions.c.last_seen),
    )
)
_DROP_EMPTY = sa.delete(_sessions).where(_SESSIONS_IN, _sessions.c.events <= 0)


class SessionLedger:
    """The tallies of one write transaction, written by `write` before it commits."""

    __slots__ = ("_tallies",)

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}

    def _tally(self, session_id: str) -> _Tally:
        tally = self._tallies.get(session_id)
        if tally is None:
            tally = self._tallies[session_id] = _Tally()
        return tally

    def created(
        self,
        session_id: str,
        *,
        timestamp: datetime,
        status: str,
        user_source: str | None,
        data: Mapping[str, Any],
    ) -> None:
        tally = self._tally(session_id)
        tally.events += 1
        tally.count(status, 1)
        if tally.first_seen is None or timestamp < tally.first_seen:
            tally.first_seen = timestamp
        if tally.last_seen is None or timestamp > tally.last_seen:
            tally.last_seen = timestamp
        if user_source is not None:
            tally.user_source = user_source
        if (server := server_name(data)) is not None:
            tally.server = server

    def changed(self, session_id: str, *, before: str, after: str, data: Mapping[str, Any] | None) -> None:
        """An event of the session went from status `before` to `after` (`data`: what the update merged)."""
        tally = self._tally(session_id)
        if before != after:
            tally.count(before, -1)
            tally.count(after, 1)
        if (server := server_name(data)) is not None:
            tally.server = server

    def deleted(self, session_id: str, *, status: str) -> None:
        tally = self._tally(session_id)
        tally.events -= 1
        tally.count(status, -1)
        tally.bounds_moved = True

    def moved(self, session_id: str) -> None:
        """An event of the session changed its timestamp (a merge of two views of one call)."""
        self._tally(session_id).bounds_moved = True

    def write(self, conn: Connection) -> None:
        """Bring the summary up to date with what the transaction did (nothing when it touched no session)."""
        if not self._tallies:
            return
        new = [(session_id, t) for session_id, t in self._tallies.items() if t.first_seen is not None]
        if new:
            conn.execute(
                _UPSERTS[conn.dialect.name],
                [
                    {
                        "session_id": session_id,
                        "first_seen": t.first_seen,
                        "last_seen": t.last_seen,
                        "user_source": t.user_source,
                        "server": t.server,
                        "events": t.events,
                        "errors": t.errors,
                        "pending": t.pending,
                    }
                    for session_id, t in new
                ],
            )
        changed = [
            {
                "b_session_id": session_id,
                "b_events": t.events,
                "b_errors": t.errors,
                "b_pending": t.pending,
                "b_server": t.server,
            }
            for session_id, t in self._tallies.items()
            if t.first_seen is None and (t.events or t.errors or t.pending or t.server is not None)
        ]
        if changed:
            conn.execute(_ADD_COUNTS, changed)
        shrunk = [session_id for session_id, t in self._tallies.items() if t.bounds_moved]
        if shrunk:
            conn.execute(_MOVE_BOUNDS, {"b_ids": shrunk})
            conn.execute(_DROP_EMPTY, {"b_ids": shrunk})


_NEWEST_FIRST = (_sessions.c.last_seen.desc(), _sessions.c.session_id.desc())


async def list_sessions(
    conn: AsyncConnection, *, limit: int, before: str | None = None
) -> list[SessionPublic]:
    """Sessions, most recently active first (by their newest event), `limit` of them; with `before`, the
    ones after that session in this order. `ReferenceNotFoundError` when `before` is no session."""
    stmt = sa.select(_sessions).order_by(*_NEWEST_FIRST).limit(limit)
    if before is not None:
        anchor = (
            await conn.execute(
                sa.select(_sessions.c.last_seen, _sessions.c.session_id).where(
                    _sessions.c.session_id == before
                )
            )
        ).first()
        if anchor is None:
            raise ReferenceNotFoundError(
                f"before: no session with id {before!r}", location=("query", "before"), value=before
            )
        stmt = stmt.where(
            sa.tuple_(_sessions.c.last_seen, _sessions.c.session_id)
            < sa.tuple_(anchor.last_seen, anchor.session_id)
        )
    return [
        SessionPublic(
            session_id=row.session_id,
            user_source=row.user_source,
            server=row.server,
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            events=row.events,
            errors=row.errors,
            pending=row.pending,
        )
        for row in await conn.execute(stmt)
    ]
