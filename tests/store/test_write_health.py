"""The write probe and what `/health` learns from it and from the writer, on real databases: it finds
writes working and changes nothing, finds a lock held elsewhere without stopping the event loop or the
writes queued behind it, and a failure that is the request's own is no news about the database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from activity_feed.errors import StoreUnavailableError
from activity_feed.store import ActivityStore
from activity_feed.store.engine import create_reader_engine, create_sqlite_writer_engine, is_sqlite
from activity_feed.store.runner import AsyncTransactionRunner, SqliteTransactionRunner, TransactionRunner
from activity_feed.store.write_health import WriteHealth
from tests.conftest import POSTGRES_URL
from tests.support.unwritable import own_postgres_database

WAIT_SECONDS = 20.0
COUNTER = "SELECT value FROM activity_change_counter"


async def _start_and_close(url: str) -> None:
    store = ActivityStore(url)
    await store.start()
    await store.close()


@pytest.fixture
async def runner(database_url: str) -> AsyncIterator[TransactionRunner]:
    """The writer's runner on a migrated database, as the store makes it."""
    await _start_and_close(database_url)
    reader = create_reader_engine(database_url)
    transaction_runner: TransactionRunner
    if is_sqlite(reader.url):
        transaction_runner = SqliteTransactionRunner(create_sqlite_writer_engine(database_url))
    else:
        transaction_runner = AsyncTransactionRunner(reader)
    yield transaction_runner
    await transaction_runner.close()
    await reader.dispose()


def always_probing(runner: TransactionRunner) -> WriteHealth:
    # Nothing is ever fresh, and /health's wait is long enough for any probe that is not stuck.
    return WriteHealth(runner, fresh_seconds=0, probe_wait_seconds=WAIT_SECONDS)


def _counter(connection: Connection) -> int:
    value: int = connection.exec_driver_sql(COUNTER).scalar_one()
    return value


async def test_the_probe_finds_writes_working_and_changes_nothing(runner: TransactionRunner) -> None:
    health = always_probing(runner)
    before = await runner(_counter, items=0)

    assert await health.problem() is None  # rolled back
    assert await health.check() is None  # committed
    assert await runner(_counter, items=0) == before


async def test_a_failure_of_the_request_itself_says_nothing_about_the_database(
    runner: TransactionRunner,
) -> None:
    health = WriteHealth(runner, fresh_seconds=3600)
    health.record(StoreUnavailableError("database unavailable"))  # not a driver's error: left out too

    def duplicate_counter(connection: Connection) -> None:
        connection.exec_driver_sql("INSERT INTO activity_change_counter (id, value) VALUES (1, 0)")

    with pytest.raises(sa.exc.IntegrityError) as refused:
        await runner(duplicate_counter, items=1)
    health.record(refused.value)

    assert await health.problem() is None  # from the probe: the refusal was not recorded


async def test_a_probe_waiting_for_a_lock_stops_neither_the_loop_nor_the_writes_behind_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'feed.db'}"
    await _start_and_close(url)
    runner = SqliteTransactionRunner(create_sqlite_writer_engine(url))
    health = always_probing(runner)
    other = sqlite3.connect(tmp_path / "feed.db", isolation_level=None)  # another process: a prune
    try:
        other.execute("BEGIN IMMEDIATE")
        probe = asyncio.create_task(health.problem())
        await asyncio.sleep(0.1)  # the probe is on the writer's thread, waiting for the lock
        write = asyncio.create_task(runner(_counter, items=1))
        # A write that took the connection on the loop would stop it until the probe gave up (5 s).
        started = time.monotonic()
        await asyncio.sleep(0.1)
        assert time.monotonic() - started < 1.0
        assert not probe.done()
        assert not write.done()

        other.execute("COMMIT")
        assert await asyncio.wait_for(probe, WAIT_SECONDS) is None
        assert await asyncio.wait_for(write, WAIT_SECONDS) == 0
    finally:
        other.close()
        await health.close()
        await runner.close()


async def test_the_probe_finds_a_lock_held_until_it_is_released(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'feed.db'}"
    await _start_and_close(url)
    runner = SqliteTransactionRunner(create_sqlite_writer_engine(url))
    health = always_probing(runner)
    other = sqlite3.connect(tmp_path / "feed.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert await health.problem() == "database is locked"  # after SQLite's busy timeout
        other.execute("ROLLBACK")
        assert await health.problem() is None
    finally:
        other.close()
        await health.close()
        await runner.close()


@pytest.mark.usefixtures("postgres_database")  # skips, or fails under CI, without PostgreSQL
def test_a_store_does_not_start_on_a_read_only_postgresql_database() -> None:
    with own_postgres_database(POSTGRES_URL) as database:
        asyncio.run(_start_and_close(database.url))
        database.set_read_only(True)

        with pytest.raises(StoreUnavailableError) as refused:
            asyncio.run(_start_and_close(database.url))

    shown = database.url.replace("postgresql://", "postgresql+asyncpg://")
    assert str(refused.value) == (
        f"cannot write to the database at {shown}: cannot execute UPDATE in a read-only transaction"
    )
