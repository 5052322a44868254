"""What a bus backend must do: carry notices from `publish` on any instance to `listen` on all."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from activity_feed.errors import ActivityFeedError
from activity_feed.hub.notice import Notice


class BusUnavailableError(ActivityFeedError):
    """The bus could not take a message (Redis is down). The change is committed all the same: every
    instance reads what the bus missed from the database."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Yielded by `listen` where messages may have been lost: each time the subscription is (re)made,
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

    async def publish(self, notices: Sequence[Notice]) -> None:
        """Send `notices` (the changes of one transaction, in order) to every instance's listener, as one
        message, in the order published; `BusUnavailableError` when the bus cannot take it now."""

    def listen(self) -> AsyncGenerator[Sequence[Notice] | Gap, None]:
        """Yield the notices of every message published on the bus, and a `Gap` wherever some may be
        missing, until `disconnect`."""
        ...

    @property
    def problem(self) -> str | None:
        """None while the bus works; otherwise why it does not, in one line (shown by `/health`)."""
        ...
