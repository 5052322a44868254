"""Many events in a SQLite file fast: a migrated database filled through the stdlib driver in one
transaction, with the column values the service's writer stores (100,000 events in about a second), for
tests that need a large feed but test no write path."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from activity_feed.store.engine import create_reader_engine
from activity_feed.store.migrate import upgrade

TOOLS = ("search_properties", "get_tenant", "book_viewing", "list_work_orders")


def migrate(url: str) -> None:
    async def run() -> None:
        engine = create_reader_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _stored(moment: datetime) -> str:
    # How the writer stores a timestamp on SQLite (store/sqlite_rows.py).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def fill_sqlite(path: Path, count: int, *, newest: datetime | None = None, padding: int = 0) -> None:
    """Migrate `path` and store `count` finished events, one a millisecond up to `newest` (default now),
    over four tools, every tenth an error; event n (from 0, oldest first) has `data` {"n": n, "note": ...},
    and a string of `padding` characters under "padding" when asked."""
    url = f"sqlite:///{path}"
    migrate(url)
    newest = newest or datetime.now(UTC)
    first = newest - timedelta(milliseconds=count - 1)
    step = timedelta(milliseconds=1)
    prefix = uuid.uuid4().hex[:20]  # unique per fill; the event's number makes the rest
    extra = {"padding": "x" * padding} if padding else {}
    rows = []
    for n in range(count):
        stamp = _stored(first + step * n)
        error = n % 10 == 0
        rows.append(
            (
                n + 1,
                f"{prefix}{n:012x}",
                stamp,
                TOOLS[n % len(TOOLS)],
                f"user-{n % 7}",
                "tool_call",
                "error" if error else "success",
                orjson.dumps({"n": n, "note": 'quote " and \\ and é', **extra}).decode(),
                float(n % 500),
                "failed" if error else None,
                f"conv-{n // 100}",
                f"session-{n % 3}" if n % 2 else None,
                stamp,
                n + 1,
            )
        )
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA cache_size = -131072")  # every index's pages in memory while they grow
        conn.executemany(
            "INSERT INTO activity_events (seq, id, timestamp, tool_name, user_source, event_type, status, "
            "data, duration_ms, error_message, correlation_id, session_id, updated_at, change_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("UPDATE activity_change_counter SET value = ?", (count,))
    conn.close()
