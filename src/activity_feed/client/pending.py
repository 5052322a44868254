"""The client's queue: bounded by item count and serialised bytes, merging an update into its queued
create, and telling `flush()` when everything queued before it has been dealt with.

An item counts against the bounds from the moment it is queued until the server has acknowledged it or
it is dropped, including while the worker is sending (or retrying) it: memory stays bounded whatever the
service does, and "accepted" means exactly "queued" (so overflow is counted exactly).

Every accepted `log()`/`update()` takes a ticket, in call order. An item remembers the earliest ticket it
holds (a merged update's ticket is later than its create's), so "every ticket up to T is resolved" is
"the smallest ticket still held is above T".
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from enum import Enum
from typing import Literal

from activity_feed.client.counters import logger
from activity_feed.client.payload import merge


class Item:
    """One queued create or update."""

    __slots__ = ("body", "changes", "id", "kind", "queued_at", "size", "ticket")

    def __init__(
        self, kind: Literal["create", "update"], id: str, body: bytes, ticket: int, queued_at: float
    ) -> None:
        self.kind = kind
        self.id = id
        self.body = body
        self.ticket = ticket
        self.queued_at = queued_at  # time.monotonic() of the first call it holds
        # Updates folded into this item but not yet merged into `body` (the worker merges them, off the
        # caller's thread), and the bytes the queue counts for it: `len(body)` plus theirs until then, an
        # upper bound of the merged size.
        self.changes: list[bytes] | None = None
        self.size = len(body)

    def merged_body(self) -> bytes:
        """`body` with the folded updates merged in, in order."""
        body = self.body
        for change in self.changes or ():
            body = merge(body, change)
        return body


class Put(Enum):
    QUEUED = "queued"
    MERGED = "merged"
    QUEUE_FULL = "queue_full"
    TOO_LARGE = "too_large"


class PendingQueue:
    """Thread-safe; callers put from any thread, the worker takes and resolves from its own."""

    def __init__(self, *, max_items: int, max_bytes: int, max_item_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self._lock = threading.Lock()
        self._resolved = threading.Condition(self._lock)
        self._creates: OrderedDict[str, Item] = OrderedDict()
        self._updates: OrderedDict[str, Item] = OrderedDict()
        self._in_flight: dict[int, Item] = {}  # by ticket
        self._items = 0
        self._bytes = 0
        self._last_ticket = 0

    def put_creates(self, creates: list[tuple[str, bytes]]) -> list[Put]:
        """Queue creates `(id, body)` in order, under one lock: what the worker admits in one go."""
        outcomes: list[Put] = []
        now = time.monotonic()
        with self._lock:
            queued = self._creates
            for event_id, body in creates:
                size = len(body)
                if size > self.max_item_bytes:
                    outcomes.append(Put.TOO_LARGE)
                elif self._items >= self.max_items or (
                    self._bytes + size > self.max_bytes and not self._room_for(size)
                ):
                    outcomes.append(Put.QUEUE_FULL)
                elif event_id in queued:  # the same id twice: the server would keep the first anyway
                    outcomes.append(Put.MERGED)
                else:
                    self._last_ticket += 1
                    queued[event_id] = Item("create", event_id, body, self._last_ticket, now)
                    self._items += 1
                    self._bytes += size
                    outcomes.append(Put.QUEUED)
        return outcomes

    def put_update(self, event_id: str, body: bytes) -> Put:
        """Queue an update, folded into the event's create (or update) when that is still queued."""
        with self._lock:
            queued = self._creates.get(event_id) or self._updates.get(event_id)
            if queued is not None:
                if (
                    queued.size + len(body) <= self.max_item_bytes
                    and self._bytes + len(body) <= self.max_bytes
                ):
                    # Fits even counted at the upper bound of its merged size: the worker merges it.
                    # (The merged JSON is never longer than both bodies together.)
                    if queued.changes is None:
                        queued.changes = [body]
                    else:
                        queued.changes.append(body)
                    queued.size += len(body)
                    self._bytes += len(body)
                    self._last_ticket += 1  # flush() waits for this call, which the item now holds
                    return Put.MERGED
                # Near a bound: decide on exact sizes, as if every merge had been done when queued.
                self._settle_queued()
                merged = merge(queued.body, body)
                growth = len(merged) - queued.size
                if len(merged) > self.max_item_bytes:
                    return Put.TOO_LARGE
                if self._bytes + growth > self.max_bytes:
                    return Put.QUEUE_FULL
                self._last_ticket += 1  # flush() waits for this call, which the merged item now holds
                queued.body = merged
                queued.size = len(merged)
                self._bytes += growth
                return Put.MERGED
            if len(body) > self.max_item_bytes:
                return Put.TOO_LARGE
            if self._items >= self.max_items or not self._room_for(len(body)):
                return Put.QUEUE_FULL
            self._last_ticket += 1
            self._updates[event_id] = Item("update", event_id, body, self._last_ticket, time.monotonic())
            self._items += 1
            self._bytes += len(body)
            return Put.QUEUED

    def _room_for(self, size: int) -> bool:
        """Whether `size` more bytes fit (lock held); counted exactly when the upper bounds would not."""
        if self._bytes + size <= self.max_bytes:
            return True
        self._settle_queued()
        return self._bytes + size <= self.max_bytes

    def _settle_queued(self) -> None:
        """Merge the folded updates of every queued item now, so that the byte count is exact (lock held;
        items in flight are settled by the worker)."""
        for source in (self._creates, self._updates):
            for item in source.values():
                if item.changes:
                    self._settle(item)

    def _settle(self, item: Item) -> None:
        try:
            body = item.merged_body()
        except Exception:  # boundary: bodies are our own JSON, so this is a bug; keep the create
            logger.debug("activity feed: could not merge an update into its event", exc_info=True)
            body = item.body
        item.body = body
        item.changes = None
        self._bytes += len(body) - item.size
        item.size = len(body)

    def take(self, max_items: int, max_body_bytes: int) -> list[Item]:
        """Move up to `max_items` queued items (creates first, oldest first) whose joined bodies fit in
        `max_body_bytes` to the in-flight set, and return them."""
        taken: list[Item] = []
        budget = max_body_bytes
        with self._lock:
            in_flight = self._in_flight
            for source in (self._creates, self._updates):
                while source and len(taken) < max_items:
                    event_id, item = source.popitem(last=False)
                    if item.size + 1 > budget and taken:
                        source[event_id] = item
                        source.move_to_end(event_id, last=False)  # still the first, for the next batch
                        break
                    in_flight[item.ticket] = item
                    taken.append(item)
                    budget -= item.size + 1  # the comma between items
        # Merge folded updates here, on the worker's thread and outside the lock (nobody adds to an
        # item once it is in flight); then count the exact size.
        for item in taken:
            if item.changes:
                try:
                    body = item.merged_body()
                except Exception:  # boundary: as in _settle()
                    logger.debug("activity feed: could not merge an update into its event", exc_info=True)
                    body = item.body
                with self._lock:
                    if self._in_flight.get(item.ticket) is item:  # not cleared meanwhile
                        self._bytes += len(body) - item.size
                        item.size = len(body)
                    item.body = body
                    item.changes = None
        return taken

    def resolve(self, items: list[Item]) -> None:
        """The server acknowledged `items`, or they were dropped: release their room and wake flush()."""
        with self._lock:
            in_flight = self._in_flight
            for item in items:
                if in_flight.pop(item.ticket, None) is not None:
                    self._items -= 1  # _release(item), inline: once per item sent
                    self._bytes -= item.size
            self._resolved.notify_all()

    def _release(self, item: Item) -> None:
        self._items -= 1
        self._bytes -= item.size

    def expire(self, older_than: float) -> int:
        """Drop queued (not in-flight) items first queued before `older_than`; return how many."""
        dropped = 0
        with self._lock:
            for source in (self._creates, self._updates):
                while source and next(iter(source.values())).queued_at < older_than:
                    self._release(source.popitem(last=False)[1])
                    dropped += 1
            if dropped:
                self._resolved.notify_all()
        return dropped

    def clear(self) -> int:
        """Drop everything, queued and in flight (at close); return how many items."""
        with self._lock:
            count = self._items
            self._creates.clear()
            self._updates.clear()
            self._in_flight.clear()
            self._items = self._bytes = 0
            self._resolved.notify_all()
        return count

    def pending(self) -> tuple[int, float | None]:
        """How many items wait to be taken, and when the oldest of them was queued."""
        with self._lock:
            heads = [s[next(iter(s))].queued_at for s in (self._creates, self._updates) if s]
            return len(self._creates) + len(self._updates), min(heads) if heads else None

    @property
    def last_ticket(self) -> int:
        return self._last_ticket

    @property
    def size(self) -> tuple[int, int]:
        """Items and bytes held, queued or in flight."""
        with self._lock:
            return self._items, self._bytes

    def _lowest_ticket(self) -> int | None:
        heads = [next(iter(s.values())).ticket for s in (self._creates, self._updates) if s]
        if self._in_flight:
            heads.append(min(self._in_flight))
        return min(heads) if heads else None

    def wait_resolved(self, ticket: int, timeout: float) -> bool:
        """Wait until every call up to `ticket` is resolved; False when `timeout` passed first."""

        def done() -> bool:
            lowest = self._lowest_ticket()
            return lowest is None or lowest > ticket

        with self._lock:
            return self._resolved.wait_for(done, timeout=max(0.0, timeout))
