"""What a bus backend must do: carry opaque payloads from `publish` on any instance to `listen` on all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class BroadcastBackend(Protocol):
    """A fan-out bus. It only carries notice of changes that are already committed to the database,
    so a backend may lose messages (Redis pub/sub does): subscribers recover from the database."""

    async def connect(self) -> None:
        """Open connections; called once before `publish` or `listen`."""

    async def disconnect(self) -> None:
        """Close connections and end every `listen` iterator."""

    async def publish(self, payload: bytes) -> None:
        """Send `payload` to every instance's listener, in the order published."""

    def listen(self) -> AsyncIterator[bytes]:
        """Yield every payload published on the bus, until `disconnect`."""
        ...
