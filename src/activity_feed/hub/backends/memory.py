"""The in-process bus (`memory://`): one instance, nothing to install, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator


class MemoryBackend:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        self._queue.put_nowait(None)

    async def publish(self, payload: bytes) -> None:
        self._queue.put_nowait(payload)

    async def listen(self) -> AsyncGenerator[bytes, None]:
        while (payload := await self._queue.get()) is not None:
            yield payload

    @property
    def problem(self) -> str | None:
        return None
