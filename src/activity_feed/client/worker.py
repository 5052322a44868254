"""The client's one background worker: a daemon thread running its own asyncio loop and httpx client.

A thread with a loop of its own serves every host alike (plain threads, asyncio, anyio/trio): the host's
loop is never touched and the caller never waits on it. The worker sleeps until there is work, then
sends a batch when `batch_size` items are waiting or the oldest has waited `flush_interval` seconds (at
once when `flush()` asks).

`timeout` bounds a whole request, answer included: httpx's own timeouts bound each read, and a server
that sent a byte now and then would hold the worker (and every event behind the batch) forever.

Retries: connection errors, timeouts, 408, 429 and 5xx retry the same batch (creates are idempotent by
id, so a batch the server committed but whose answer was lost creates nothing twice), after an
exponential backoff with full jitter (0..min(max_backoff, 0.1 s * 2^attempt)), or after `Retry-After`
when the server sends one. Any other 4xx is final: the items are counted `rejected`, except that 413
and 422 split the batch in two and try each half, so that one bad item does not take its neighbours
with it. A 2xx whose body is not the batch's counts comes from some other service at that URL: the
items are dropped as `bad_response` rather than sent there again. Batches go one at a time, so an
update queued apart from its create is always sent after it.

The budget: an item is retried for as long as it is younger than `max_retry_seconds` (default 60 s)
and then dropped as `gave_up`, in flight or still queued, oldest first, which makes room for the
newest. An outage shorter than that loses nothing that fitted in the queue; a longer one keeps the
last minute or so, which is what a live feed shows first. `max_retry_seconds=None` never gives up:
events then wait for the service for as long as it takes, and new ones are refused when the queue is
full.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, ParamSpec, TypeVar

import httpx

from activity_feed import __version__
from activity_feed.client.counters import Counters, DropReason, Warnings, logger
from activity_feed.client.intake import Intake
from activity_feed.client.payload import ENVELOPE_BYTES, batch_body
from activity_feed.client.pending import Item, PendingQueue
from activity_feed.drop_report import default_source, report_headers

T = TypeVar("T")
P = ParamSpec("P")
BASE_BACKOFF_SECONDS = 0.1
MAX_RETRY_AFTER_SECONDS = 60.0
_RETRYABLE_STATUS = frozenset({408, 425, 429})
_SPLIT_STATUS = frozenset({413, 422})


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    endpoint: str
    token: str | None
    batch_size: int
    flush_interval: float
    timeout: float
    max_retry_seconds: float | None
    max_backoff: float
    max_request_bytes: int


class _Outcome(Enum):
    SENT = "sent"
    RETRY = "retry"
    SPLIT = "split"  # 413 or 422 for several items: try each half
    TOO_LARGE = "too_large"
    REJECTED = "rejected"
    BAD_RESPONSE = "bad_response"  # a 2xx from something that is not an Activity Feed


_DROPPED_AS: dict[_Outcome, DropReason] = {
    _Outcome.TOO_LARGE: "too_large",
    _Outcome.REJECTED: "rejected",
    _Outcome.BAD_RESPONSE: "bad_response",
}


class Worker:
    def __init__(
        self,
        queue: PendingQueue,
        intake: Intake,
        config: WorkerConfig,
        counters: Counters,
        warnings: Warnings,
    ):
        self._queue = queue
        self._intake = intake
        # True while the worker sleeps with nothing to do: the next call wakes it. Otherwise callers
        # leave it alone (waking costs a system call), since it admits their calls when it next looks.
        # Set before the worker's last look at the intake, so a call made meanwhile is never missed.
        self.idle = False
        self._config = config
        self._counters = counters
        self._warnings = warnings
        # Made here, in the process that sends: a forked child's worker is a new one (lifecycle.py).
        self._source = default_source()
        self._thread = threading.Thread(target=self._run, name="activity-feed-client", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        # Made here, bound to the worker's loop on first use (asyncio events take no loop since 3.10).
        self._wake_event = asyncio.Event()
        # flush() asks to send without waiting for the interval: counters rather than a flag, so that a
        # request made while the worker looks at an empty queue is not cleared with it.
        self._flush_requested = 0
        self._flush_served = 0
        self._poke_event = asyncio.Event()  # flush(): cut a backoff short
        self._failing = False
        # Set by close(): failures are then not warned about one by one, since close() reports what
        # was left, and why (`last_failure`), in one line.
        self.closing = False
        self.last_failure: str | None = None

    def start(self) -> None:
        # No need to wait for the loop: a wake() sent before it runs is not needed, since the worker
        # looks at the queue before it first sleeps.
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self, *, urgent: bool = False) -> None:
        """Thread-safe: tell the worker there is work (urgent: send now, and retry now if backing off)."""
        self.idle = False
        if urgent:  # seen even when the loop has not started yet
            self._flush_requested += 1
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the worker has stopped
            loop.call_soon_threadsafe(self._set_events, urgent)

    def _set_events(self, urgent: bool) -> None:
        self._wake_event.set()
        if urgent:
            self._poke_event.set()

    def stop(self, timeout: float) -> None:
        """Cancel whatever the worker is doing and wait up to `timeout` seconds for the thread."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=max(0.0, timeout))

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(_ExitSafeExecutor(max_workers=1, thread_name_prefix="activity-feed-lookup"))
        try:
            self._task = loop.create_task(self._main())
            self._loop = loop
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:  # boundary: a bug here must not reach the host; the queue then just fills up
            logger.exception("the activity feed client's worker stopped")
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        headers = {"content-type": "application/json", "user-agent": f"activity-feed-client/{__version__}"}
        if self._config.token:
            headers["authorization"] = f"Bearer {self._config.token}"
        timeout = httpx.Timeout(self._config.timeout)
        # Loading the CA certificates holds the interpreter lock for tens of milliseconds (hundreds on a
        # busy machine), stalling every thread of the host: done only when TLS will be used, and then at
        # the client's creation (feed_client.py starts the worker there), not inside a tool call.
        verify = not self._config.endpoint.lower().startswith("http://")
        async with httpx.AsyncClient(headers=headers, timeout=timeout, verify=verify) as http:
            while True:
                await self._wait_for_batch()
                self._intake.admit_all()
                self._expire_queued()
                items = self._queue.take(
                    self._config.batch_size, self._config.max_request_bytes - ENVELOPE_BYTES
                )
                if items:
                    await self._deliver(http, items)

    async def _wait_for_batch(self) -> None:
        while True:
            self._wake_event.clear()
            requested = self._flush_requested
            self._intake.admit_all()
            waiting, oldest = self._queue.pending()
            if waiting == 0:
                self._flush_served = requested
                self.idle = True
                if len(self._intake) == 0:
                    await self._wake_event.wait()
                self.idle = False
                continue
            if waiting >= self._config.batch_size or self._flush_requested != self._flush_served:
                return
            assert oldest is not None
            delay = oldest + self._config.flush_interval - time.monotonic()
            if delay <= 0:
                return
            try:
                async with asyncio.timeout(delay):
                    await self._wake_event.wait()
            except TimeoutError:
                return

    def _expire_queued(self) -> None:
        if self._config.max_retry_seconds is None:
            return
        dropped = self._queue.expire(time.monotonic() - self._config.max_retry_seconds)
        if dropped:
            self._counters.add_dropped("gave_up", dropped)

    def _expire(self, items: list[Item]) -> list[Item]:
        limit = self._config.max_retry_seconds
        if limit is None:
            return items
        cutoff = time.monotonic() - limit
        expired = [item for item in items if item.queued_at < cutoff]
        if not expired:
            return items
        self._queue.resolve(expired)
        self._counters.add_dropped("gave_up", len(expired))
        self._warnings.warn(
            "gave_up", "activity feed: gave up on %d events after %.0f s", len(expired), limit
        )
        return [item for item in items if item.queued_at >= cutoff]

    async def _deliver(self, http: httpx.AsyncClient, items: list[Item]) -> None:
        attempt = 0
        while True:
            items = self._expire(items)
            self._expire_queued()
            if not items:
                return
            if attempt:
                self._counters.add_retried(len(items))
            outcome, delay = await self._attempt(http, items)
            if outcome is _Outcome.SENT:
                self._queue.resolve(items)
                self._counters.add_sent(len(items))
                return
            if outcome is _Outcome.SPLIT and len(items) > 1:
                half = len(items) // 2
                await self._deliver(http, items[:half])
                await self._deliver(http, items[half:])
                return
            if outcome is not _Outcome.RETRY:
                self._queue.resolve(items)
                self._counters.add_dropped(_DROPPED_AS[outcome], len(items))
                return
            attempt += 1
            if delay is None:
                await self._backoff(self._jitter(attempt), interruptible=True)
            else:
                await self._backoff(max(delay, self._jitter(attempt) / 4), interruptible=False)

    def _jitter(self, attempt: int) -> float:
        return random.uniform(0, min(self._config.max_backoff, BASE_BACKOFF_SECONDS * 2**attempt))

    async def _backoff(self, delay: float, *, interruptible: bool) -> None:
        """Sleep before a retry; flush() cuts it short, unless the server asked for it (Retry-After)."""
        if not interruptible:
            await self._admitting_meanwhile(asyncio.sleep(delay))
            return
        self._poke_event.clear()
        with contextlib.suppress(TimeoutError):
            await self._admitting_meanwhile(asyncio.wait_for(self._poke_event.wait(), delay))

    async def _admitting_meanwhile(self, work: Coroutine[Any, Any, T]) -> T:
        """Await `work` (a send, a backoff) while admitting new calls every `flush_interval`, so that
        the intake stays short however long the service takes to answer."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=max(self._config.flush_interval, 0.01))
                if done:
                    return task.result()
                self._intake.admit_all()
        finally:
            if not task.done():  # the worker is stopping: end `work` too, rather than leave it pending
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _attempt(self, http: httpx.AsyncClient, items: list[Item]) -> tuple[_Outcome, float | None]:
        """Send once; for RETRY, also the server's Retry-After delay if it gave one."""
        creates = [item.body for item in items if item.kind == "create"]
        updates = [item.body for item in items if item.kind == "update"]
        # What was dropped so far rides along, so that the service can show it (drop_report.py).
        report = report_headers(self._source, self._counters.dropped)
        try:
            response = await self._admitting_meanwhile(self._post(http, batch_body(creates, updates), report))
        except httpx.TransportError as exc:  # connection refused or reset, timeouts, protocol errors
            self._report_failure(f"{type(exc).__name__}: {exc}", len(items))
            return _Outcome.RETRY, None
        except TimeoutError:
            self._report_failure(f"no complete answer within {self._config.timeout:g} s", len(items))
            return _Outcome.RETRY, None
        status = response.status_code
        if status < 300:
            counts = _batch_counts(response)
            if counts is None:
                self._warnings.warn(
                    "bad-response",
                    "activity feed: %s answered HTTP %d with %r, which is not an Activity Feed's answer; "
                    "is the URL right? %d events dropped",
                    self._config.endpoint,
                    status,
                    response.text[:80],
                    len(items),
                )
                return _Outcome.BAD_RESPONSE, None
            if self._failing:
                self._failing, self.last_failure = False, None
                logger.info("activity feed at %s answers again", self._config.endpoint)
            self._count_refused_merges(counts)
            return _Outcome.SENT, None
        detail = response.text[:300]
        if status in _RETRYABLE_STATUS or status >= 500:
            self._report_failure(f"HTTP {status}", len(items))
            return _Outcome.RETRY, _retry_after(response)
        if status in _SPLIT_STATUS and len(items) > 1:
            return _Outcome.SPLIT, None
        self._warnings.warn(
            f"rejected-{status}",
            "activity feed at %s refused %d events with HTTP %d: %s",
            self._config.endpoint,
            len(items),
            status,
            detail,
        )
        return (_Outcome.TOO_LARGE if status == 413 else _Outcome.REJECTED), None

    async def _post(self, http: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
        async with asyncio.timeout(self._config.timeout):  # the whole request: see the module's docstring
            return await http.post(self._config.endpoint, content=body, headers=headers)

    def _count_refused_merges(self, counts: dict[str, Any]) -> None:
        # The service refuses an update whose `data`, merged into the stored event, would be too large,
        # and counts it in an otherwise successful batch.
        refused = counts.get("too_large", 0)
        if isinstance(refused, int) and refused > 0:
            self._counters.add_dropped("too_large", refused)
            self._warnings.warn(
                "merge-too-large",
                "activity feed refused %d updates: their merged data would be over the size limit",
                refused,
            )

    def _report_failure(self, reason: str, count: int) -> None:
        self._failing, self.last_failure = True, reason
        if self.closing:
            return
        self._warnings.warn(
            "unreachable",
            "activity feed at %s failed (%s); retrying %d events",
            self._config.endpoint,
            reason,
            count,
        )


class _ExitSafeExecutor(ThreadPoolExecutor):
    """The worker loop's default executor, where asyncio looks host names up (getaddrinfo).

    Python's own pool refuses work once the interpreter has begun to exit, which is when close() makes
    the last flush: the worker died there on any URL with a host name. The lookup then runs on the
    worker's own thread instead, which blocks only the worker (close() stops waiting at its deadline)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        try:
            return super().submit(fn, *args, **kwargs)
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            done: Future[T] = Future()
            try:
                done.set_result(fn(*args, **kwargs))
            except Exception as exc:
                done.set_exception(exc)
            return done


def _batch_counts(response: httpx.Response) -> dict[str, Any] | None:
    """The batch answer's counts (`created`, `updated`...), or None when the body is something else."""
    try:
        counts = response.json()
    except ValueError:  # not JSON (an HTML page), or not UTF-8
        return None
    if isinstance(counts, dict) and isinstance(counts.get("created"), int):
        return counts
    return None


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (either form), capped; None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
