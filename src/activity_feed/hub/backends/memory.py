"""The in-process bus (`memory://`): one instance, nothing to install, nothing lost.

The listener receives the very notices the publisher made: with nothing to cross, nothing is encoded or
parsed again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from activity_feed.hub.notice import Notice


class MemoryBackend:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Sequence[Notice] | None] = asyncio.Queue()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        self._queue.put_nowait(None)

    async def publish(self, notices: Sequence[Notice]) -> None:
        self._queue.put_nowait(notices)

    async def listen(self) -> AsyncGenerator[Sequence[Notice], None]:
        while (notices := await self._queue.get()) is not None:
            yield notices

    @property
    def problem(self) -> str | None:
        return None
