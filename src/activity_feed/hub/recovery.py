"""Reading from the database what the bus did not deliver: the hub's side of "the database is the source
of truth".

Change numbers are handed out under a lock on one counter row, one transaction at a time, so they are
gap-free and commit in order across every instance on the database: once change N is committed, so is
every change below N. The bus, though, may lose notices (Redis pub/sub is at most once) and may deliver
two instances' notices out of order. So the hub keeps the number of the last change it delivered; a
notice numbered higher than the next one, or a `Gap` from the backend, sends it here to read the missing
changes from the database, in order, before it goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from activity_feed.schemas import Change

PAGE = 500
_YIELD_EVERY = 64  # as the hub's listener does: let the senders drain the queues during a long read


class ChangeLog(Protocol):
    """What the hub reads from the database (`ActivityStore` provides it)."""

    async def last_change(self) -> int:
        """The newest change number handed out."""
        ...

    async def changes_since(self, *, cursor: int, limit: int, origin: int | None = None) -> list[Change]:
        """Up to `limit` changes after `cursor`, in change order, each event in its latest state."""
        ...


async def read_missed(changes: ChangeLog, *, after: int, deliver: Callable[[Change], None]) -> int:
    """Deliver, in change order, every change after `after` that the database holds, at least up to its
    head when called; return the number to carry on from (no change at or below it is still to come).

    Several changes of one event come as one, in its latest state, numbered by the newest: the numbers
    in between are gone from the database, so the hub carries on from the head rather than expecting
    them. An event created after `after` comes as `activity_logged`: no subscriber has seen it."""
    # Read the head first: every change up to it is committed, so the reads below see all of them (each
    # read is one statement, one snapshot, which holds a prefix of the change numbers: see reads.py).
    head = await changes.last_change()
    last = after
    delivered = 0
    while True:
        page = await changes.changes_since(cursor=last, limit=PAGE, origin=after)
        for change in page:
            deliver(change)
            last = change.seq
            delivered += 1
            if delivered % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
        if len(page) < PAGE:
            return max(last, head)
