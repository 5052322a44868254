"""The in-process bus (`memory://`): one instance, nothing to install, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


class MemoryBackend:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        self._queue.put_nowait(None)

    async def publish(self, payload: bytes) -> None:
        self._queue.put_nowait(payload)

    async def listen(self) -> AsyncIterator[bytes]:
        while (payload := await self._queue.get()) is not None:
            yield payload
