"""One stream client's view of the hub: its filter and its bounded queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from activity_feed.hub.notice import Notice
from activity_feed.schemas import Change, ChangeType, DeletedEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeFilter:
    """Which events a client wants, matched against each event's state after the change.
    Deletions always pass: a client drops an id it does not know, and a filter must never hide one."""

    event_type: str | None = None
    status: str | None = None
    tool_name: str | None = None
    session_id: str | None = None

    def matches(self, notice: Notice) -> bool:
        if (
            self.event_type is None
            and self.status is None
            and self.tool_name is None
            and self.session_id is None
        ):
            return True
        if notice.type == ChangeType.DELETED:
            return True
        event = notice.event
        return (
            (self.event_type is None or event["event_type"] == self.event_type)
            and (self.status is None or event["status"] == self.status)
            and (self.tool_name is None or event["tool_name"] == self.tool_name)
            # .get: a notice from an instance that predates sessions has no such field.
            and (self.session_id is None or event.get("session_id") == self.session_id)
        )

    def matches_change(self, change: Change) -> bool:
        """`matches` for a change read from the database, without encoding it first (a replay sends
        only what matches, and its events may be large)."""
        event = change.event
        if change.type == ChangeType.DELETED or isinstance(event, DeletedEvent):
            return True
        return (
            (self.event_type is None or event.event_type == self.event_type)
            and (self.status is None or event.status == self.status)
            and (self.tool_name is None or event.tool_name == self.tool_name)
            and (self.session_id is None or event.session_id == self.session_id)
        )


class Subscription:
    """A bounded queue the hub fills without ever waiting.

    While the client is catching up from the database (`catching_up`), a full queue only marks the
    notices as `lost`, since the next pass over the database finds them. Once live, a full queue means
    the client cannot keep up: `too_slow` is set and the hub stops feeding it.
    """

    def __init__(self, change_filter: ChangeFilter, queue_size: int) -> None:
        self.filter = change_filter
        self.queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=queue_size)
        self.catching_up = True
        self.lost = False
        self.too_slow = asyncio.Event()

    def offer(self, notice: Notice) -> bool:
        """Queue `notice` if it matches; return False when this subscriber must be dropped."""
        if not self.filter.matches(notice):
            return True
        try:
            self.queue.put_nowait(notice)
        except asyncio.QueueFull:
            if self.catching_up:
                self.lost = True
                return True
            self.too_slow.set()
            return False
        return True

    def restart_catch_up(self) -> None:
        """Forget what is queued: the database pass that follows covers all of it."""
        self.lost = False
        while not self.queue.empty():
            self.queue.get_nowait()
