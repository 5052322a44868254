"""What the client did (`sent`, `retried`, `dropped` by reason) and its rate-limited warnings.

The client logs through the `logging` module only (logger `activity_feed.client`): with no handler
configured, Python's last-resort handler writes warnings to stderr. Nothing ever goes to stdout, which
an MCP server on stdio owns.
"""

from __future__ import annotations

import logging
import threading
import time

from activity_feed.drop_report import DROP_REASONS, DropReason

logger = logging.getLogger("activity_feed.client")

__all__ = ["DROP_REASONS", "Counters", "DropReason", "Warnings", "logger"]
WARNING_INTERVAL_SECONDS = 30.0


class Counters:
    """Item counts (a merged create and update is one item). Safe to update from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent = 0
        self._retried = 0
        self._dropped: dict[DropReason, int] = dict.fromkeys(DROP_REASONS, 0)

    def add_sent(self, count: int) -> None:
        with self._lock:
            self._sent += count

    def add_retried(self, count: int) -> None:
        with self._lock:
            self._retried += count

    def add_dropped(self, reason: DropReason, count: int = 1) -> None:
        with self._lock:
            self._dropped[reason] += count

    @property
    def sent(self) -> int:
        return self._sent

    @property
    def retried(self) -> int:
        return self._retried

    @property
    def dropped(self) -> dict[str, int]:
        with self._lock:
            return {reason: count for reason, count in self._dropped.items()}


class Warnings:
    """At most one warning per kind every `interval` seconds; the next one says how many were held back."""

    def __init__(self, interval: float = WARNING_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warn(self, kind: str, message: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        if held:
            message += " (%d similar warnings in the last %.0f s not shown)"
            args = (*args, held, self._interval)
        logger.warning(message, *args, exc_info=exc_info)
