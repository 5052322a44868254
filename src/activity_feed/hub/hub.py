"""The hub: publishes committed changes to the bus and fans what the bus delivers out to subscribers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing, asynccontextmanager

from activity_feed.hub.backends import BroadcastBackend, Gap
from activity_feed.hub.backoff import Backoff
from activity_feed.hub.notice import Notice
from activity_feed.hub.recovery import ChangeLog, read_missed
from activity_feed.hub.subscription import ChangeFilter, Subscription
from activity_feed.schemas import Change

log = logging.getLogger(__name__)
_YIELD_EVERY = 64
_PUBLISH_RETRY = (0.1, 2.0)  # first delay and cap, in seconds
_RECOVERY_RETRY = (0.1, 5.0)


# Hears every delivered notice, in change order, on the listener's task: it must be quick and never wait.
Observer = Callable[[Sequence[Notice]], None]


def _notices(changes: Sequence[Change]) -> list[Notice]:
    return [Notice.from_change(change) for change in changes]


class Hub:
    """One listener task reads the bus and offers each notice to every subscriber's bounded queue; a
    subscriber that is full is dropped, so no client can slow the others or the writer.

    Started with a `ChangeLog` (the store), the hub delivers every change committed after its start
    exactly once and in change order, whatever the bus loses or reorders: see hub/recovery.py."""

    def __init__(self, backend: BroadcastBackend) -> None:
        self._backend = backend
        self._subscribers: set[Subscription] = set()
        self._observers: list[Observer] = []
        self._outbox: asyncio.Queue[Sequence[Change]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._changes: ChangeLog | None = None
        # The number of the last change delivered; None without a change log (nothing to check against).
        self._last: int | None = None
        self.recoveries = 0
        self._warned_foreign = False
        self._recovery_failing = False

    async def start(self, changes: ChangeLog | None = None) -> None:
        """Start publishing and listening; with `changes`, fill what the bus misses from the database."""
        self._changes = changes
        if changes is not None:
            self._last = await changes.last_change()
        await self._backend.connect()
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="activity-feed-hub-publish"),
            asyncio.create_task(self._listen_loop(), name="activity-feed-hub-listen"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._backend.disconnect()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def bus_problem(self) -> str | None:
        """None while the bus works; otherwise why not (changes then reach clients from the database)."""
        return self._backend.problem

    def publish(self, changes: Sequence[Change]) -> None:
        """Queue committed changes for the bus, in order. Never waits: the writer calls this.

        Each change becomes a notice, whose text (what every client receives) is encoded once, when first
        needed; one bus message carries all the changes of one transaction. The notices are made by the
        publishing task, not here: the writer takes its next transaction only once this returns."""
        if changes:
            self._outbox.put_nowait(changes)

    @asynccontextmanager
    async def subscribe(self, change_filter: ChangeFilter, *, queue_size: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(change_filter, queue_size)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def observe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer` with every notice the hub delivers from now on (local and other instances'
        changes alike), in change order, exactly once; return what stops it.

        Unlike a subscription there is no queue: `observer` runs on the listener's task, so it must only
        record what it needs and return (alerts/evaluator.py keeps counters)."""
        self._observers.append(observer)

        def stop() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return stop

    def _observe(self, notices: Sequence[Notice]) -> None:
        if not notices:
            return
        for observer in self._observers:
            try:
                observer(notices)
            except Exception:  # boundary: an observer's bug must not stop delivery to the stream
                log.exception("a hub observer failed on %d notice(s)", len(notices))

    async def _publish_loop(self) -> None:
        backoff = Backoff(*_PUBLISH_RETRY)
        failing_since: float | None = None
        while True:
            notices = _notices(await self._outbox.get())
            while True:
                try:
                    await self._backend.publish(notices)
                except Exception as exc:  # boundary: the database has the change; nothing may stop this loop
                    if failing_since is None:
                        failing_since = time.monotonic()
                        # Once per outage: every change after this one would say the same.
                        log.warning(
                            "publishing to the bus failed (%s: %s); changes are stored, and instances "
                            "read what they missed from the database",
                            type(exc).__name__,
                            exc,
                        )
                    await asyncio.sleep(backoff.next_delay())
                    # Only the newest message is retried: when it reaches the other instances, they see
                    # the gap below it and read the rest from the database.
                    while not self._outbox.empty():
                        notices = _notices(self._outbox.get_nowait())
                    continue
                if failing_since is not None:
                    log.warning(
                        "publishing to the bus works again after %.1f s", time.monotonic() - failing_since
                    )
                    failing_since = None
                    backoff.reset()
                break

    async def _listen_loop(self) -> None:
        backoff = Backoff(*_RECOVERY_RETRY)
        while True:
            try:
                await self._listen()
                return  # the backend was disconnected
            except Exception:  # boundary: live delivery must outlive a backend that fails
                log.exception("listening to the bus failed; listening again")
            await asyncio.sleep(backoff.next_delay())
            await self._recover("listening again")

    async def _listen(self) -> None:
        delivered = 0
        async with aclosing(self._backend.listen()) as items:
            async for item in items:
                if isinstance(item, Gap):
                    await self._recover(item.reason)
                    continue
                if not self._subscribers and self._follows_on(item):
                    # Nobody to offer them to: the count moves on at once, not notice by notice, which
                    # costs a large batch noticeably when no client is watching.
                    if self._last is not None:
                        self._last = item[-1].seq
                    self._observe(item)
                    continue
                observed: list[Notice] = []
                for notice in item:
                    if self._last is not None:
                        if notice.seq != self._last + 1:
                            if notice.seq > self._last:
                                # Observers hear the changes before the gap before those read to fill it.
                                self._observe(observed)
                                observed = []
                                await self._fill_gap(notice.seq)
                            # Below: delivered already, from the database or by an earlier notice. Above:
                            # delivered from the database just now, after the changes before it.
                            continue
                        self._last = notice.seq
                    self._fan_out(notice)
                    if self._observers:
                        observed.append(notice)
                    delivered += 1
                    if delivered % _YIELD_EVERY == 0:
                        # A large batch arrives as many notices at once; letting the senders run every so
                        # often keeps a client that is keeping up from looking too slow merely because the
                        # listener filled its queue faster than the sender could be scheduled.
                        await asyncio.sleep(0)
                self._observe(observed)

    def _follows_on(self, notices: Sequence[Notice]) -> bool:
        """Whether `notices` are the changes right after the last delivered, in order and with none
        missing: a transaction's are numbered one after another."""
        if not notices or self._last is None:
            return True
        return notices[0].seq == self._last + 1 and notices[-1].seq == self._last + len(notices)

    async def _fill_gap(self, seq: int) -> None:
        # Notices lost, or another instance's still on their way: the database has them all.
        await self._recover(f"change {seq} came after {self._last}")
        if self._last is not None and seq > self._last and not self._warned_foreign:
            # Committed changes are in the database before their notice is sent, so a notice above the
            # head read after it came from another database: two deployments share one Redis channel.
            self._warned_foreign = True
            log.warning(
                "ignoring change %d from the bus: this database's newest is %d; does an instance on another "
                "database publish on the same Redis channel? (give each deployment its own ?channel=)",
                seq,
                self._last,
            )

    async def _recover(self, reason: str) -> None:
        """Deliver what the bus missed from the database, retrying (with backoff) until it answers:
        every later notice depends on these changes coming first."""
        if self._changes is None or self._last is None:
            return
        backoff = Backoff(*_RECOVERY_RETRY)
        while True:
            try:
                carry_on = await read_missed(self._changes, after=self._last, deliver=self._deliver_change)
            except Exception as exc:  # boundary: the listener must outlive any database failure
                if not self._recovery_failing:
                    self._recovery_failing = True  # said once until it works again, not at every retry
                    log.warning("cannot read missed changes from the database (%s); retrying", exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            if self._recovery_failing:
                self._recovery_failing = False
                log.warning("reading missed changes from the database works again")
            self._last = max(self._last, carry_on)
            self.recoveries += 1
            log.debug("read missed changes from the database (%s); now at change %d", reason, self._last)
            return

    def _deliver_change(self, change: Change) -> None:
        # Kept current change by change: a recovery that fails half-way resumes after the last one sent.
        self._last = change.seq
        notice = Notice.from_change(change)
        self._fan_out(notice)
        self._observe((notice,))

    def _fan_out(self, notice: Notice) -> None:
        dropped = [sub for sub in self._subscribers if not sub.offer(notice)]
        for subscription in dropped:
            self._subscribers.discard(subscription)
        if dropped:
            log.info("dropping %d stream client(s) that could not keep up", len(dropped))
