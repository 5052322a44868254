"""The hub: publishes committed changes to the bus and fans what the bus delivers out to subscribers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from activity_feed.hub.backends import BroadcastBackend
from activity_feed.hub.notice import Notice
from activity_feed.hub.subscription import ChangeFilter, Subscription
from activity_feed.schemas import Change

log = logging.getLogger(__name__)
_YIELD_EVERY = 64


class Hub:
    """One listener task reads the bus and offers each notice to every subscriber's bounded queue; a
    subscriber that is full is dropped, so no client can slow the others or the writer."""

    def __init__(self, backend: BroadcastBackend) -> None:
        self._backend = backend
        self._subscribers: set[Subscription] = set()
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
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

    def publish(self, changes: Sequence[Change]) -> None:
        """Queue committed changes for the bus, in order. Never waits: the writer calls this.

        One bus message carries all the changes of one transaction, one stream message per line (JSON
        text holds no raw newline), so a group commit of many events costs one trip through the bus."""
        if changes:
            payload = "\n".join(Notice.from_change(change).text for change in changes)
            self._outbox.put_nowait(payload.encode())

    @asynccontextmanager
    async def subscribe(self, change_filter: ChangeFilter, *, queue_size: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(change_filter, queue_size)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    async def _publish_loop(self) -> None:
        while True:
            payload = await self._outbox.get()
            try:
                await self._backend.publish(payload)
            except Exception:  # boundary: the database has the change; clients recover it by cursor
                log.exception("publishing a change to the bus failed")

    async def _listen_loop(self) -> None:
        delivered = 0
        async for payload in self._backend.listen():
            for line in payload.split(b"\n"):
                try:
                    notice = Notice.from_payload(line)
                except Exception:  # boundary: a malformed bus message must not stop the stream for all
                    log.warning("ignoring a malformed bus message")
                    continue
                self._fan_out(notice)
                delivered += 1
                if delivered % _YIELD_EVERY == 0:
                    # A large batch arrives as many notices at once; letting the senders run every so
                    # often keeps a client that is keeping up from looking too slow merely because the
                    # listener filled its queue faster than the sender could be scheduled.
                    await asyncio.sleep(0)

    def _fan_out(self, notice: Notice) -> None:
        dropped = [sub for sub in self._subscribers if not sub.offer(notice)]
        for subscription in dropped:
            self._subscribers.discard(subscription)
        if dropped:
            log.info("dropping %d stream client(s) that could not keep up", len(dropped))
