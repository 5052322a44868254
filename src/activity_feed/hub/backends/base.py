"""What a bus backend must do: carry opaque payloads from `publish` on any instance to `listen` on all."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from activity_feed.errors import ActivityFeedError


class BusUnavailableError(ActivityFeedError):
    """The bus could not take a payload (Redis is down). The change is committed all the same: every
    instance reads what the bus missed from the database."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Yielded by `listen` where payloads may have been lost: each time the subscription is (re)made,
    and after each failed attempt while it cannot be. The listener reads what it missed from the
    database; `reason` is for the log."""

    reason: str


class BroadcastBackend(Protocol):
    """A fan-out bus. It only carries notice of changes that are already committed to the database,
    so a backend may lose messages (Redis pub/sub does), as long as it says where with a `Gap`."""

    async def connect(self) -> None:
        """Prepare connections; called once before `publish` or `listen`. Must not fail because the
        bus is down: the service starts, degraded, and the backend connects when it can."""

    async def disconnect(self) -> None:
        """Close connections and end every `listen` iterator."""

    async def publish(self, payload: bytes) -> None:
        """Send `payload` to every instance's listener, in the order published; `BusUnavailableError`
        when the bus cannot take it now."""

    def listen(self) -> AsyncGenerator[bytes | Gap, None]:
        """Yield every payload published on the bus, and a `Gap` wherever some may be missing, until
        `disconnect`."""
        ...

    @property
    def problem(self) -> str | None:
        """None while the bus works; otherwise why it does not, in one line (shown by `/health`)."""
        ...
