"""How a write transaction runs on each database. The transaction itself (`writer.transact`) is one
synchronous function, so it is written once for both."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


class TransactionRunner(Protocol):
    """Runs `work(connection)` inside one committed transaction."""

    def __call__(self, work: Callable[[Connection], T]) -> Awaitable[T]: ...

    async def close(self) -> None: ...


class ThreadTransactionRunner:
    """SQLite: the whole transaction in one hop to a dedicated thread, on the stdlib driver."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="activity-feed-writer")

    def _run(self, work: Callable[[Connection], T]) -> T:
        with self._engine.begin() as connection:
            return work(connection)

    def __call__(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(self._thread, self._run, work)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown(wait=True)


class AsyncTransactionRunner:
    """PostgreSQL: asyncpg through SQLAlchemy's `run_sync`, which drives the sync code on the event loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _run(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    def __call__(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        return self._run(work)

    async def close(self) -> None:
        return None  # the engine is the reader's too; the store disposes of it
