"""Interpreter exit and fork, for every live `FeedClient`.

- At exit (atexit) every open client is closed, flushing for at most `EXIT_FLUSH_SECONDS` in all: a
  host must never hang on its way out because the feed is down.
- After `os.fork()` the child starts afresh: the parent's worker thread does not exist in the child,
  and its queue (with items the parent is sending) and locks (perhaps held at the moment of the fork)
  must not be shared. Each client gets a new queue, zeroed counters and, on its next call, a new
  worker. The parent's worker object is kept referenced and never touched, so that its event loop and
  sockets, which belong to the parent, are not closed or collected in the child.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Protocol


class ManagedClient(Protocol):
    """What exit and fork need of a client (`FeedClient`)."""

    def close(self, timeout: float = ...) -> None: ...

    def reset_after_fork(self) -> None: ...


EXIT_FLUSH_SECONDS = 2.0

# Held until closed: a client nobody else references still has events to send, and exit must flush them.
_clients: set[ManagedClient] = set()
_lock = threading.Lock()
_abandoned: list[object] = []


def now() -> float:
    return time.monotonic()


def register(client: ManagedClient) -> None:
    with _lock:
        _clients.add(client)


def unregister(client: ManagedClient) -> None:
    with _lock:
        _clients.discard(client)


def abandon(worker: object | None) -> None:
    """Keep a forked parent's worker referenced and untouched: its loop and sockets are the parent's."""
    if worker is not None:
        _abandoned.append(worker)


def close_all(timeout: float = EXIT_FLUSH_SECONDS) -> None:
    """Close every open client, within `timeout` seconds in all."""
    deadline = now() + timeout
    with _lock:
        clients = list(_clients)
    for client in clients:
        client.close(timeout=max(0.0, deadline - now()))


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for client in list(_clients):
        client.reset_after_fork()


atexit.register(close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
