"""Both directions of the stdio relay on one thread, with busy polling (`busy_poll.py`).

One thread waits on both sources at once, so that after a message it can poll for the answer, whichever
side it comes from, without being woken. Writes are non-blocking: a target that is full (a peer that
stops reading) holds its direction back, and only its direction, until it drains, as a thread blocked
on it would; the other direction goes on. Every chunk is forwarded as soon as it is read, unchanged and
in order, after a copy has been handed to the tap.

The proxy's own stdout is shared with whoever started it, so its flags are not touched: the relay writes
to a new open file description of the same pipe (`/proc/self/fd/1`), which it can make non-blocking
alone. Where that cannot be had (stdout is not a pipe, or not Linux), `stdio.py` relays with a thread per
direction instead.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import time
from collections.abc import Callable
from typing import Protocol

from activity_feed.proxy.busy_poll import yield_cpu

CHUNK_BYTES = 256 * 1024
_READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_WRITABLE = select.POLLOUT | select.POLLHUP | select.POLLERR


class Tap(Protocol):
    """Where the relay hands a copy of each chunk it forwards, in each direction."""

    def copy(self, chunk: bytes) -> None: ...


def reopen_nonblocking(fd: int) -> int | None:
    """A new, non-blocking, write-only open file description of the pipe `fd` writes to; None when `fd`
    is not a pipe or cannot be reopened."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


class Flow:
    """One direction: reads `source`, writes `target` (non-blocking), hands copies to `tap`."""

    def __init__(
        self, source: int, target: int, tap: Tap | None, on_end: Callable[[], None] | None = None
    ) -> None:
        self.source = source
        self.target = target
        self.copy = tap.copy if tap is not None else None
        self.on_end = on_end
        self.pending = b""  # read and not yet written: while it waits, the source is not read
        self.reading = True
        self.writable = True
        self.done = False

    def send(self, chunk: bytes) -> None:
        """Write `chunk`, or as much as the target takes; the rest waits in `pending`."""
        if not self.writable:
            return
        try:
            written = os.write(self.target, chunk)
        except BlockingIOError:
            written = 0
        except OSError:
            # The reader is gone. Keep reading, so the writer on the other side is not blocked on a full
            # pipe and can reach its own end.
            self.writable = False
            self.pending = b""
            return
        self.pending = chunk[written:] if written < len(chunk) else b""

    def end(self) -> None:
        self.done = True
        if self.on_end is not None:
            self.on_end()


class PollingRelay:
    """Relays `inbound` (client to server) and `outbound` on the calling thread until `outbound` (the
    server's output) is done, polling for `window` seconds after each event before it sleeps."""

    def __init__(self, inbound: Flow, outbound: Flow, window: float) -> None:
        self.inbound = inbound
        self.outbound = outbound
        self.window = window
        self.progress = time.monotonic()
        self._poller = select.poll()
        self._watching: dict[int, tuple[Flow, bool]] = {}  # fd: (flow, whether fd is its source)

    def run(self) -> None:
        for flow in (self.inbound, self.outbound):
            self._watch(flow)
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        poll, readv, monotonic, yield_ = self._poller.poll, os.readv, time.monotonic, yield_cpu
        busy_until = 0.0
        while not self.outbound.done:
            events = poll(0)
            if not events:
                if monotonic() < busy_until:
                    yield_()  # a process waiting for a CPU (the server, the client) runs first
                    continue
                events = poll()
            for fd, _ in events:
                watched = self._watching.get(fd)
                if watched is None or watched[0].done:
                    continue
                flow, is_source = watched
                if is_source:
                    try:
                        size = readv(fd, (buffer,))
                    except BlockingIOError:  # a source its owner made non-blocking, read by another
                        continue
                    except OSError:
                        size = 0
                    if not size:
                        flow.reading = False
                    else:
                        chunk = bytes(view[:size])
                        if flow.copy is not None:
                            flow.copy(chunk)
                        flow.send(chunk)
                else:
                    flow.send(flow.pending)
                self._watch(flow)
            busy_until = self.progress = monotonic()
            busy_until += self.window

    def _watch(self, flow: Flow) -> None:
        """Watch the flow's source while nothing waits for its target, else the target; end the flow
        once its source has ended and everything read is written."""
        if not flow.reading and not flow.pending:
            self._forget(flow.source)
            self._forget(flow.target)
            if not flow.done:
                flow.end()
            return
        watched, other, mask = (
            (flow.target, flow.source, _WRITABLE) if flow.pending else (flow.source, flow.target, _READABLE)
        )
        self._forget(other)
        self._poller.register(watched, mask)
        self._watching[watched] = (flow, watched == flow.source)

    def _forget(self, fd: int) -> None:
        if self._watching.pop(fd, None) is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._poller.unregister(fd)
