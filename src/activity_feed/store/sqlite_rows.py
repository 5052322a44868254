"""SQLite's side of creating events: rows encoded as SQLite stores them, and the statements that insert
and look them up, given to the driver directly.

SQLAlchemy's per-value bind processing costs more than SQLite's own work for a batch, so new rows go to
the driver as the values SQLAlchemy's SQLite dialect would store (tests/store/test_rows.py holds them
equal). Most of the encoding happens when a create is submitted, on the event loop's thread; the
transaction, on the writer's thread (the batch path's bottleneck), only completes each row.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from activity_feed.ids import uuid7
from activity_feed.schemas import ENUM_TEXT, ActivityCreate
from activity_feed.store.engine import json_dumps
from activity_feed.store.rows import ROW_COLUMNS
from activity_feed.store.schema import activity_events

_TABLE = activity_events.name
_ONE_ROW = f"({', '.join('?' for _ in ROW_COLUMNS)})"
SQLITE_INSERT = f"INSERT INTO {_TABLE} ({', '.join(ROW_COLUMNS)}) VALUES {_ONE_ROW}"
_DELETE_ABOVE = f"DELETE FROM {_TABLE} WHERE seq > ?"
_ROWS_ONE_STATEMENT_EACH = 64  # up to this many rows, an insert is one executemany
_MOST_ROWS_PER_STATEMENT = 2048
_OLD_PARAMETER_LIMIT = 999  # SQLite's cap on a statement's parameters before 3.32


@functools.cache
def sqlite_insert_rows(count: int) -> str:
    """SQLite's INSERT of `count` whole rows in one statement (a parameter per column of each)."""
    return SQLITE_INSERT.replace(f"VALUES {_ONE_ROW}", "VALUES " + ", ".join([_ONE_ROW] * count))


@functools.cache
def sqlite_ids_present(count: int) -> str:
    """SQLite's SELECT of which of `count` ids (each as `sa.Uuid` stores it: 32 hex digits) are stored."""
    return f"SELECT id FROM {_TABLE} WHERE id IN ({', '.join(['?'] * count)})"


def sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text ("2026-11-26 17:58:25.508149", microseconds always written), in
    UTC like `UtcDateTime` (naive is UTC); the same text keeps the timestamp indexes in time order."""
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


@dataclass(slots=True)
class SqliteRowDraft:
    """A new event's row as SQLite stores it, but for what its transaction decides: its change number
    and, when the event gave no timestamp, its time (`complete_row`)."""

    id: uuid.UUID
    id_hex: str  # sa.Uuid on SQLite: 32 hex digits
    # The columns from `id` to `session_id`, in `ROW_COLUMNS` order; the timestamp is None when the
    # event takes its transaction's time.
    values: tuple[Any, ...]


def draft_row(event: ActivityCreate) -> SqliteRowDraft:
    """`event`'s row (a new id when it names none), but for what its transaction decides."""
    event_id = event.id or uuid7()
    id_hex = event_id.hex
    return SqliteRowDraft(
        event_id,
        id_hex,
        (
            id_hex,
            sqlite_datetime(event.timestamp) if event.timestamp is not None else None,
            event.tool_name,
            event.user_source,
            ENUM_TEXT[event.event_type],
            ENUM_TEXT[event.status],
            json_dumps(event.data),  # the engines' json_serializer
            event.duration_ms,
            event.error_message,
            event.correlation_id,
            event.session_id,
        ),
    )


def complete_row(draft: SqliteRowDraft, *, seq: int, now: str) -> tuple[Any, ...]:
    """The whole row of a new event, in `ROW_COLUMNS` order: its change number `seq` (both `seq` and
    `change_seq`), and `now`, its transaction's time as `sqlite_datetime` writes it (`updated_at`, and
    the timestamp when the event gave none)."""
    values = draft.values
    if values[1] is None:
        return (seq, values[0], now, *values[2:], now, seq)
    return (seq, *values, now, seq)


def is_stored_id(exc: sa.exc.IntegrityError) -> bool:
    """Whether SQLite refused a row because its `id` is stored already (or was inserted just before)."""
    original = exc.orig
    return getattr(original, "sqlite_errorname", None) == "SQLITE_CONSTRAINT_UNIQUE" and str(
        original
    ).endswith(f"{_TABLE}.id")


class SqliteRowWriter:
    """Inserts, finds and takes back new rows on one SQLite connection, in as few statements as SQLite's
    parameter cap allows: each statement hands the interpreter lock to the event loop's thread while
    SQLite works and waits to get it back, so a statement a row would wait once a row."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @functools.cached_property
    def _parameter_limit(self) -> int:
        driver = self._conn.connection.dbapi_connection
        if isinstance(driver, sqlite3.Connection):
            return driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return _OLD_PARAMETER_LIMIT

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert whole rows (`complete_row`); a unique `id` already stored raises IntegrityError."""
        if len(rows) <= _ROWS_ONE_STATEMENT_EACH:
            self._conn.exec_driver_sql(SQLITE_INSERT, rows)
            return
        # Chunks of powers of two: a few distinct statements, which the driver keeps prepared.
        largest = self._rows_per_statement()
        start = 0
        while start < len(rows):
            count = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
            values = tuple(itertools.chain.from_iterable(rows[start : start + count]))
            self._conn.exec_driver_sql(sqlite_insert_rows(count), values)
            start += count

    def _rows_per_statement(self) -> int:
        # The largest power of two of whole rows under the cap, and at most a whole group.
        rows = max(1, min(_MOST_ROWS_PER_STATEMENT, self._parameter_limit // len(ROW_COLUMNS)))
        return 1 << (rows.bit_length() - 1)

    def delete_above(self, seq: int) -> None:
        """Take back the rows numbered above `seq`: with the change counter locked, only this
        transaction's own inserts are."""
        self._conn.exec_driver_sql(_DELETE_ABOVE, (seq,))

    def stored(self, id_hexes: Sequence[str]) -> list[uuid.UUID]:
        """Which of these ids (32 hex digits each) are stored, asked with the driver's own values:
        SQLAlchemy's expanding IN would compile the statement and bind every id. Each statement is padded
        to a power of two (the last id again), so that few distinct statements are ever prepared."""
        found: list[uuid.UUID] = []
        per_statement = self._parameter_limit
        for start in range(0, len(id_hexes), per_statement):
            chunk = list(id_hexes[start : start + per_statement])
            size = min(per_statement, 1 << (len(chunk) - 1).bit_length())
            chunk += [chunk[-1]] * (size - len(chunk))
            result = self._conn.exec_driver_sql(sqlite_ids_present(size), tuple(chunk))
            found.extend(uuid.UUID(hex=value) for (value,) in result)
        return found
