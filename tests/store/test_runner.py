"""SQLite's transactions write on the event loop when small and commit on the writer's thread: the loop
must never wait for a lock that another process holds, nor for a commit's fsync."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.store import ActivityStore
from activity_feed.store.engine import create_reader_engine, create_sqlite_writer_engine
from activity_feed.store.migrate import upgrade
from activity_feed.store.reads import RecentQuery
from activity_feed.store.runner import INLINE_MAX_ITEMS, SqliteTransactionRunner

WAIT_SECONDS = 20


async def test_a_write_waits_for_another_process_lock_without_blocking_the_loop(tmp_path: Path) -> None:
    database = tmp_path / "locked.db"
    store = ActivityStore(f"sqlite:///{database}")
    await store.start()
    other = sqlite3.connect(database, isolation_level=None)  # another process: a migration, a prune
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL)))
        # The loop goes on (this sleep ends) while the write waits for the lock; a write that blocked
        # the loop would have held it until SQLite gave up, and failed.
        await asyncio.sleep(0.3)
        reads_meanwhile = await asyncio.wait_for(store.recent(query=RecentQuery()), WAIT_SECONDS)
        assert not write.done()
        assert reads_meanwhile == []

        other.execute("COMMIT")  # the lock is released: the waiting write goes through
        event, created = await asyncio.wait_for(write, WAIT_SECONDS)
    finally:
        other.close()
        await store.close()

    assert created
    assert event.event_type == EventType.TOOL_CALL


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[tuple[SqliteTransactionRunner, Engine, Path]]:
    """A runner on a migrated database, with its engine (to listen to) and the database file."""
    database = tmp_path / "runner.db"
    reader = create_reader_engine(f"sqlite:///{database}")
    try:
        await upgrade(reader)
    finally:
        await reader.dispose()
    engine = create_sqlite_writer_engine(f"sqlite:///{database}")
    transaction_runner = SqliteTransactionRunner(engine)
    yield transaction_runner, engine, database
    await transaction_runner.close()


def _bump(connection: Connection) -> str:
    connection.exec_driver_sql("UPDATE activity_change_counter SET value = value + 1")
    return threading.current_thread().name


def _counter(database: Path) -> int:
    with sqlite3.connect(database) as other:
        value: int = other.execute("SELECT value FROM activity_change_counter").fetchone()[0]
    return value


async def test_a_small_transaction_commits_on_the_writer_thread_while_the_loop_goes_on(
    runner: tuple[SqliteTransactionRunner, Engine, Path],
) -> None:
    run, engine, database = runner
    committed_on: list[str] = []

    def slow_commit(_connection: Connection) -> None:
        committed_on.append(threading.current_thread().name)
        time.sleep(0.3)  # a slow disk's fsync

    sa.event.listen(engine, "commit", slow_commit)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        wrote_on = await asyncio.wait_for(run(_bump, items=1), WAIT_SECONDS)
        assert _counter(database) == 1  # committed by the time the call returns
    finally:
        ticker.cancel()

    assert wrote_on == threading.current_thread().name  # the statements ran on the loop's thread
    assert len(committed_on) == 1
    assert committed_on[0].startswith("activity-feed-writer")
    assert ticks >= 5  # the loop went on while the commit took its 0.3 s


@pytest.mark.parametrize("items", [1, INLINE_MAX_ITEMS + 1], ids=["small", "large"])
async def test_a_commit_that_fails_reaches_the_caller_and_the_next_write_goes_through(
    runner: tuple[SqliteTransactionRunner, Engine, Path], items: int
) -> None:
    run, engine, database = runner

    def fail_once(_connection: Connection) -> None:
        sa.event.remove(engine, "commit", fail_once)
        raise OSError("disk I/O error")

    sa.event.listen(engine, "commit", fail_once)

    with pytest.raises(OSError, match="disk I/O error"):
        await asyncio.wait_for(run(_bump, items=items), WAIT_SECONDS)
    assert _counter(database) == 0  # rolled back

    await asyncio.wait_for(run(_bump, items=items), WAIT_SECONDS)  # the connection went back to its pool
    assert _counter(database) == 1
