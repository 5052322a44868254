"""The single writer: every change goes through one task that commits many requests per transaction.

Group commit is what lets durable commits (an fsync per transaction on SQLite) keep up with many
concurrent clients: while one transaction commits, the next requests queue, and the following
transaction takes them all (store/transaction.py), then publishes its changes, in order, after commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

from activity_feed.errors import StoreUnavailableError
from activity_feed.schemas import Change
from activity_feed.store.engine import failure_reason, is_unavailable
from activity_feed.store.runner import TransactionRunner
from activity_feed.store.sqlite_rows import draft_row
from activity_feed.store.transaction import CompletedCall, WriteOutcome, WriteRequest, transact

log = logging.getLogger(__name__)

OnCommit = Callable[[Sequence[Change]], None]


class WriteObserver(Protocol):
    """Hears of every committed transaction, on the writer's task: it must return at once."""

    def committed(self, seconds: float, calls: Sequence[CompletedCall]) -> None:
        """A transaction took `seconds` from its start to its commit, and finished these tool calls."""
        ...


class GroupCommitWriter:
    """Queues write requests and commits them in groups of up to `batch_size` items per transaction."""

    def __init__(
        self,
        run: TransactionRunner,
        *,
        on_commit: OnCommit | None = None,
        observer: WriteObserver | None = None,
        batch_size: int = 2000,
        queue_timeout: float | None = None,
        draft_for_sqlite: bool = False,
    ):
        self._run_transaction = run
        self._draft_for_sqlite = draft_for_sqlite
        self._on_commit = on_commit
        self._observer = observer
        self._batch_size = batch_size
        self._queue_timeout = queue_timeout
        self._queue: asyncio.Queue[WriteRequest] = asyncio.Queue()
        self._queued_items = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="activity-feed-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    @property
    def backlog(self) -> int:
        """Items queued that no transaction has taken yet."""
        return self._queued_items

    async def submit(self, request: WriteRequest) -> WriteOutcome:
        """Queue `request` and wait until it is committed (or has failed).

        With a `queue_timeout`, a request that no transaction has taken by then is withdrawn and fails
        with `StoreUnavailableError`: the transaction ahead of it is waiting on a database that does not
        answer, and its caller gets a prompt 503 (with nothing written) rather than waiting its turn
        behind it. A request already in a transaction is waited for: the driver's timeouts bound it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteOutcome] = loop.create_future()
        request.future = future
        if self._draft_for_sqlite and request.creates and not request.sqlite_drafts:
            request.sqlite_drafts = [draft_row(item) for item in request.creates]
        self._queue.put_nowait(request)
        self._queued_items += request.size
        if self._queue_timeout is None:
            return await future
        # A timer rather than asyncio.wait(): this runs for every request, and a timer handle costs less
        # than half as much.
        timer = loop.call_later(self._queue_timeout, self._withdraw_if_waiting, request)
        try:
            return await future
        finally:
            timer.cancel()

    def _withdraw_if_waiting(self, request: WriteRequest) -> None:
        future = request.future
        if request.taken or future is None or future.done():
            return
        request.withdrawn = True
        reason = f"database unavailable: no write committed within {self._queue_timeout:g} s"
        future.set_exception(StoreUnavailableError(reason))

    async def _run(self) -> None:
        while True:
            group: list[WriteRequest] = []
            size = 0
            request = await self._queue.get()
            while True:
                self._queued_items -= request.size
                if request.withdrawn:
                    self._queue.task_done()
                else:
                    request.taken = True
                    group.append(request)
                    size += request.size
                if size >= self._batch_size or self._queue.empty():
                    break
                request = self._queue.get_nowait()
            if not group:
                continue
            try:
                await self._commit(group)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit(self, group: list[WriteRequest]) -> None:
        started = time.perf_counter()
        try:
            outcomes, changes, calls = await self._transact(group)
        except Exception as exc:  # boundary: every failure must reach the waiting requests, never the loop
            if len(group) > 1 and not is_unavailable(exc):
                # One bad request must not fail the others that happened to share its transaction.
                for request in group:
                    await self._commit([request])
                return
            error: Exception = exc
            if is_unavailable(exc):
                error = StoreUnavailableError(f"database unavailable: {failure_reason(exc)}")
            for request in group:
                if request.future is not None and not request.future.done():
                    request.future.set_exception(error)
            return
        for request, outcome in zip(group, outcomes, strict=True):
            if request.future is not None and not request.future.done():
                request.future.set_result(outcome)
        if changes and self._on_commit is not None:
            try:
                self._on_commit(changes)
            except Exception:  # boundary: a failing listener must not stop the writer
                log.exception("publishing committed changes failed")
        if self._observer is not None:
            try:
                self._observer.committed(time.perf_counter() - started, calls)
            except Exception:  # boundary: metrics must not stop the writer
                log.exception("observing a committed transaction failed")

    async def _transact(
        self, group: list[WriteRequest]
    ) -> tuple[list[WriteOutcome], list[Change], list[CompletedCall]]:
        items = sum(request.size for request in group)
        return await self._run_transaction(partial(transact, group=group), items=items)
