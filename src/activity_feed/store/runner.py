"""How a write transaction runs on PostgreSQL: the transaction itself (`writer.transact`) is one synchronous
function, written once for both databases; SQLite's writer thread calls it directly (thread_writer.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


class TransactionRunner(Protocol):
    """Runs `work(connection)` inside one committed transaction."""

    def __call__(self, work: Callable[[Connection], T]) -> Awaitable[T]: ...


class AsyncTransactionRunner:
    """PostgreSQL: asyncpg through SQLAlchemy's `run_sync`, which drives the sync code on the event loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _run(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    def __call__(self, work: Callable[[Connection], T]) -> Awaitable[T]:
        return self._run(work)
