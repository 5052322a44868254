"""Whether the database takes writes, for `/health` and for starting up.

A read-only file or database, another process holding SQLite's write lock, a full disk: the database
still answers reads, and only a write tells. Two sources, the newer wins. The writer's transactions
report how they ended (`ReportingRunner`: a clock read each). When none has ended for `FRESH_SECONDS`,
`WriteHealth.problem()` probes: a write transaction of its own, on the writer's connection on SQLite,
that sets the change counter to itself (it takes the write lock and changes nothing) and is rolled back,
or committed when the last thing seen was a failure: only a commit shows that a full disk has room again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection

from activity_feed.store.engine import failure_reason, is_unavailable
from activity_feed.store.runner import TransactionRunner
from activity_feed.store.schema import activity_change_counter

T = TypeVar("T")
log = logging.getLogger(__name__)

# What `/health` says of writes is at most this old, unless a probe is still waiting for a lock.
FRESH_SECONDS = 1.0
# How long `/health` waits for a probe it started before answering with what was known: a probe may wait
# for a lock (SQLite's busy timeout, PostgreSQL's statement timeout), and `/health` must stay quick.
PROBE_WAIT_SECONDS = 0.2

_counter = activity_change_counter
_TOUCH_COUNTER = sa.update(_counter).where(_counter.c.id == 1).values(value=_counter.c.value)


def touch_counter(connection: Connection) -> None:
    """The probe's write: the change counter's row set to what it holds."""
    connection.execute(_TOUCH_COUNTER)


class WriteHealth:
    """Why writes fail now, from the writer's last transaction or a probe; None while they work."""

    def __init__(
        self,
        runner: TransactionRunner,
        *,
        fresh_seconds: float = FRESH_SECONDS,
        probe_wait_seconds: float = PROBE_WAIT_SECONDS,
    ) -> None:
        self._runner = runner
        self._fresh_seconds = fresh_seconds
        self._probe_wait_seconds = probe_wait_seconds
        self._problem: str | None = None
        self._seen_at = -math.inf  # monotonic time of the newest outcome, transaction or probe
        self._probe_task: asyncio.Task[None] | None = None

    def record(self, error: BaseException | None) -> None:
        """How a write transaction ended (None: committed). A failure that is the request's own (a
        constraint, a bad value) says nothing of the database and is left out."""
        if error is None:
            self._problem = None
        elif is_unavailable(error):
            self._problem = failure_reason(error)
        else:
            return
        self._seen_at = time.monotonic()

    async def check(self) -> str | None:
        """Probe with a committed write, wait for it, and return why writes fail (None: they work)."""
        await self._probe(commit=True)
        return self._problem

    async def problem(self) -> str | None:
        """Why writes fail, or None. Probes first when nothing is fresh, waiting a moment for the answer."""
        if self._probe_task is None and time.monotonic() - self._seen_at >= self._fresh_seconds:
            self._probe_task = task = asyncio.create_task(self._probe(commit=self._problem is not None))
            task.add_done_callback(self._probe_done)
            # Not cancelled on timeout: it goes on, and a later call reads its answer.
            await asyncio.wait({task}, timeout=self._probe_wait_seconds)
        return self._problem

    def _probe_done(self, _task: asyncio.Task[None]) -> None:
        self._probe_task = None

    async def _probe(self, *, commit: bool) -> None:
        started = time.monotonic()
        problem: str | None = None
        try:
            await self._runner.probe(touch_counter, commit=commit)
        except Exception as exc:  # boundary: whatever stops the probe's write is what /health reports
            if not is_unavailable(exc):
                log.warning("the write probe failed", exc_info=exc)
            problem = failure_reason(exc)
        # A transaction that ended while the probe ran is newer news.
        if self._seen_at <= started:
            self._problem = problem
            self._seen_at = time.monotonic()

    async def close(self) -> None:
        """Wait for a probe still running (at most a lock's wait)."""
        if self._probe_task is not None:
            await asyncio.gather(self._probe_task, return_exceptions=True)


class ReportingRunner:
    """A `TransactionRunner` that reports how each of its transactions ended to `health`."""

    def __init__(self, runner: TransactionRunner, health: WriteHealth) -> None:
        self._runner = runner
        self._health = health

    async def __call__(self, work: Callable[[Connection], T], *, items: int) -> T:
        try:
            result = await self._runner(work, items=items)
        except Exception as exc:  # only to report it: it goes on to the writer as it was
            self._health.record(exc)
            raise
        self._health.record(None)
        return result

    async def probe(self, work: Callable[[Connection], None], *, commit: bool) -> None:
        await self._runner.probe(work, commit=commit)

    async def close(self) -> None:
        await self._runner.close()
