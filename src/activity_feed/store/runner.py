"""How a write transaction runs on each database. The transaction itself (`transaction.transact`) is one
synchronous function, so it is written once for both."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from activity_feed.store.checkpoint import WalCheckpointer
from activity_feed.store.engine import SQLITE_BUSY_TIMEOUT_MS, is_sqlite_busy

T = TypeVar("T")

# The largest transaction, in items, whose statements SQLite's runner runs on the event loop itself.
INLINE_MAX_ITEMS = 64


class TransactionRunner(Protocol):
    """Runs `work(connection)`, which writes `items` items, inside one committed transaction."""

    def __call__(self, work: Callable[[Connection], T], *, items: int) -> Awaitable[T]: ...

    def probe(self, work: Callable[[Connection], None], *, commit: bool) -> Awaitable[None]:
        """Run `work` in a write transaction of its own, waiting for locks as a write would, and commit
        it only when `commit` is true; it raises what a write would meet (store/write_health.py)."""
        ...

    async def close(self) -> None: ...


def _commit_or_roll_back(connection: Connection) -> None:
    try:
        connection.commit()
    except BaseException:
        # SQLAlchemy counts a transaction whose commit failed as ended, and would hand the connection back
        # to its pool with SQLite's transaction (and the write lock) still open: every later BEGIN failed.
        driver = connection.connection.dbapi_connection
        if driver is not None and driver.in_transaction:
            driver.rollback()
        raise


class SqliteTransactionRunner:
    """SQLite on the stdlib driver: a small transaction writes on the event loop and commits on a thread
    of its own; a large one runs wholly on that thread.

    A small transaction's statements take a fraction of a millisecond, and on a thread they would cost
    more than that in hand-offs: to the thread and back, a turn of the busy loop each way, and the two
    threads passing the interpreter lock at every SQLite call. Its commit is another matter: the fsync
    of the log (synchronous=FULL) is slower, and on the loop it would stop every request meanwhile. On
    the thread, which releases the interpreter lock while it syncs, the loop goes on reading requests,
    and the next group is larger (`bench ingest`). A large transaction (a batch: tens of milliseconds)
    goes to the thread whole, so that the loop serves other requests meanwhile and
    SQLite's own work, which releases the lock, runs beside it. One transaction at a time either way:
    the group-commit writer awaits each, commit included, before it answers any of its requests.

    The loop never waits for another process's write lock (a migration, a prune): on the loop the
    connection's busy timeout is 0, and a transaction that finds the database locked (at its BEGIN, before
    any work) runs again on the thread, which waits for the lock as long as SQLite's busy timeout."""

    def __init__(self, engine: Engine, *, inline_max_items: int = INLINE_MAX_ITEMS) -> None:
        self._engine = engine
        self._inline_max_items = inline_max_items
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="activity-feed-writer")
        # While a probe has the connection on the thread, transactions queue there behind it: on the loop
        # they would wait for the connection with the loop stopped.
        self._probing = False
        # The file as SQLite itself resolved it (empty for an in-memory database, which has no log).
        with engine.connect() as connection:
            main = connection.exec_driver_sql("PRAGMA database_list").fetchone()
        path = main[2] if main is not None else ""
        self._checkpointer = WalCheckpointer(path) if path else None

    def _committed(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def _run_waiting(self, work: Callable[[Connection], T], commit: bool = True) -> T:
        with self._engine.connect() as connection:
            # On the driver's connection: through SQLAlchemy's, the PRAGMA would begin a transaction.
            driver = connection.connection.dbapi_connection
            assert driver is not None
            driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            try:
                connection.begin()
                result = work(connection)
                if not commit:
                    connection.rollback()
                    return result
                _commit_or_roll_back(connection)
                self._committed()
                return result
            finally:
                driver.execute("PRAGMA busy_timeout=0")

    async def __call__(self, work: Callable[[Connection], T], *, items: int) -> T:
        loop = asyncio.get_running_loop()
        if items <= self._inline_max_items and not self._probing:
            try:
                connection, result = self._write(work)
            except Exception as exc:  # only to tell a lock held elsewhere from any other failure
                if not is_sqlite_busy(exc):
                    raise
            else:
                await loop.run_in_executor(self._thread, self._commit, connection)
                return result
        return await loop.run_in_executor(self._thread, self._run_waiting, work)

    async def probe(self, work: Callable[[Connection], None], *, commit: bool) -> None:
        self._probing = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._run_waiting, work, commit)
        finally:
            self._probing = False

    def _write(self, work: Callable[[Connection], T]) -> tuple[Connection, T]:
        """Run `work` in a new transaction, and hand back its connection with the transaction open."""
        connection = self._engine.connect()
        try:
            connection.begin()
            return connection, work(connection)
        except BaseException:
            connection.close()  # rolls the transaction back
            raise

    def _commit(self, connection: Connection) -> None:
        # On the writer's thread: the loop's thread is done with the connection until this returns.
        try:
            _commit_or_roll_back(connection)
        finally:
            connection.close()
        self._committed()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown(wait=True)


class AsyncTransactionRunner:
    """PostgreSQL: asyncpg through SQLAlchemy's `run_sync`, which drives the sync code on the event loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __call__(self, work: Callable[[Connection], T], *, items: int) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    async def probe(self, work: Callable[[Connection], None], *, commit: bool) -> None:
        async with self._engine.connect() as connection:
            await connection.run_sync(work)
            if commit:
                await connection.commit()
            # Otherwise leaving the block rolls the transaction back.

    async def close(self) -> None:
        return None  # the engine is the reader's too; the store disposes of it
