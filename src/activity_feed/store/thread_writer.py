"""SQLite's group commit, driven by the writer thread itself.

The thread takes whatever requests are queued as soon as its previous transaction has committed, and
hands the answers back to the event loop without waiting for them to be delivered. Driven from the event
loop instead (`GroupCommitWriter`), every transaction would also wait for a turn of a busy loop, to be
started and again to be finished, and that wait, not SQLite, set the pace of small writes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from sqlalchemy import Engine

from activity_feed.errors import StoreUnavailableError
from activity_feed.store.writer import (
    OnCommit,
    WriteOutcome,
    WriteRequest,
    fail,
    one_at_a_time,
    settle,
    transact,
)


class ThreadGroupCommitWriter:
    """Commits queued write requests in groups of up to `batch_size` items per transaction, on a thread
    of its own that alone uses `engine` (SQLite's writer engine: one connection)."""

    def __init__(self, engine: Engine, *, on_commit: OnCommit | None = None, batch_size: int = 2000):
        self._engine = engine
        self._on_commit = on_commit
        self._batch_size = batch_size
        self._queued: deque[WriteRequest] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="activity-feed-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Commit what is queued, then stop, and close the engine."""
        if self._thread is None:
            return
        with self._wake:
            self._closing = True
            self._wake.notify()
        await asyncio.to_thread(self._thread.join)
        # The answers the thread sent before it ended were queued on the loop ahead of this task's own
        # wake-up, so they have all been delivered by now.
        self._thread = None

    async def submit(self, request: WriteRequest) -> WriteOutcome:
        """Queue `request` and wait until it is committed (or has failed)."""
        if self._loop is None or self._closing:
            raise StoreUnavailableError("the store is not running")
        future: asyncio.Future[WriteOutcome] = self._loop.create_future()
        request.future = future
        with self._wake:
            self._queued.append(request)
            self._wake.notify()
        return await future

    def _run(self) -> None:
        try:
            while (group := self._next_group()) is not None:
                self._commit(group)
        finally:
            self._engine.dispose()

    def _next_group(self) -> list[WriteRequest] | None:
        """The requests queued now, up to `batch_size` items; waits for one; None once closed and done."""
        with self._wake:
            while not self._queued:
                if self._closing:
                    return None
                self._wake.wait()
            group: list[WriteRequest] = []
            size = 0
            while self._queued and size < self._batch_size:
                request = self._queued.popleft()
                request.taken = True
                group.append(request)
                size += request.size
            return group

    def _commit(self, group: list[WriteRequest]) -> None:
        assert self._loop is not None
        try:
            with self._engine.begin() as conn:
                outcomes, changes = transact(conn, group=group)
        except Exception as exc:  # boundary: every failure must reach its requests, not end the thread
            if one_at_a_time(group, exc):
                for request in group:
                    self._commit([request])
                return
            self._loop.call_soon_threadsafe(fail, group, exc)
            return
        # Answers reach the loop in commit order (call_soon_threadsafe keeps it), and so do the changes.
        self._loop.call_soon_threadsafe(settle, group, outcomes, changes, self._on_commit)
