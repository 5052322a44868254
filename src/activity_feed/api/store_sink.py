"""`StoreSink`: `ActivityLoggerMiddleware`'s sink inside the service process, writing into the local store."""

from __future__ import annotations

import asyncio
import logging

from activity_feed.errors import ActivityFeedError
from activity_feed.schemas import ActivityCreate
from activity_feed.store import ActivityStore

log = logging.getLogger(__name__)


class StoreSink:
    """Writes into the local store: for apps that run inside the service process (or embed the feed).

    Each event is committed by a background task, so the response that caused it never waits. At most
    `max_in_flight` events wait at once; beyond that, events are dropped and counted."""

    def __init__(self, store: ActivityStore, *, max_in_flight: int = 10_000) -> None:
        self._store = store
        self._max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def emit(self, event: ActivityCreate) -> None:
        if len(self._tasks) >= self._max_in_flight:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._record(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, event: ActivityCreate) -> None:
        try:
            await self._store.create(event=event)
        except ActivityFeedError as exc:
            self.dropped += 1
            log.warning("could not record %s: %s", event.tool_name, exc)

    async def drain(self) -> None:
        """Wait for the events already handed over to be committed (used at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
